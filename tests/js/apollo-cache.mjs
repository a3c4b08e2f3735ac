// Query one snippet's citations at several releases through ONE Apollo Client with its default,
// normalising InMemoryCache, then read each answer back from the cache: a partner's build that
// pins release 1 must still read release 1 after the same client has fetched release 2.
// Usage: node apollo-cache.mjs <graphql url> <snippet key> <release> [<release> ...]
// Prints {"fetched": {release: data}, "cached": {release: data}} as JSON; exits 2 when it cannot run.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const CITATIONS = gql`
  query Citations($key: String!, $release: Int) {
    snippet(key: $key, release: $release) {
      citations {
        id
        title
      }
    }
  }
`;

async function main() {
  const [url, key, ...releases] = process.argv.slice(2);
  if (!url || !key || releases.length === 0) {
    console.error("usage: node apollo-cache.mjs <graphql url> <snippet key> <release> ...");
    return 2;
  }
  const client = new ApolloClient({
    link: new HttpLink({ uri: url, fetch }),
    cache: new InMemoryCache(),
  });
  const fetched = {};
  // one after another, as a build that reads release 1 and later release 2 would
  for (const release of releases) {
    const variables = { key, release: Number(release) };
    const result = await client.query({ query: CITATIONS, variables });
    if (result.error) {
      throw result.error;
    }
    fetched[release] = result.data;
  }
  const cached = {};
  for (const release of releases) {
    const variables = { key, release: Number(release) };
    cached[release] = client.readQuery({ query: CITATIONS, variables });
  }
  console.log(JSON.stringify({ fetched, cached }));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`the Apollo cache check could not run: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 2;
  },
);
