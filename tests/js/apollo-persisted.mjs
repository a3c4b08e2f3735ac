// Automatic persisted queries as Apollo Client 4 speaks them, against the real service: each of
// two clients (their own link and cache, as two partner builds) runs the same query through
// createPersistedQueryLink with useGETForHashedQueries. The first sends only the hash over GET,
// is told PersistedQueryNotFound and sends the document; the second's hashed GET is answered
// from then on without the document. Run once per media type the client may ask for.
// Usage: node apollo-persisted.mjs <graphql url> <snippet key>
// Prints {"<accept>": {"first": {requests, data}, "second": {requests, data}}, ...} as JSON, where
// each request is {method, status, hasQuery, sha256Hash}; exits 2 when it cannot run.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries";

// Apollo Client's own Accept header, and what a partner that wants plain JSON sends
const ACCEPTS = ["default", "application/json"];

function snippetQuery(accept) {
  // one document per media type, so that each run starts with a hash the server has not seen
  const name = accept === "default" ? "PersistedSnippet" : "PersistedSnippetJson";
  return gql(`
    query ${name}($key: String!) {
      snippet(key: $key) {
        id
        key
        title
      }
    }
  `);
}

function sha256(text) {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

async function describe(input, init, response) {
  const url = new URL(typeof input === "string" ? input : input.url);
  const method = (init && init.method) || "GET";
  let params;
  if (method === "GET") {
    params = Object.fromEntries(url.searchParams.entries());
    if (params.extensions) params.extensions = JSON.parse(params.extensions);
  } else {
    params = JSON.parse(init.body);
  }
  return {
    method,
    status: response.status,
    contentType: response.headers.get("content-type"),
    hasQuery: typeof params.query === "string",
    sha256Hash: params.extensions?.persistedQuery?.sha256Hash ?? null,
  };
}

function newClient(url, accept, requests) {
  const recordingFetch = async (input, init) => {
    const response = await fetch(input, init);
    requests.push(await describe(input, init, response.clone()));
    return response;
  };
  const headers = accept === "default" ? {} : { accept };
  const link = createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({ uri: url, fetch: recordingFetch, headers }),
  );
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

async function run(url, key, accept) {
  const query = snippetQuery(accept);
  const outcome = {};
  for (const which of ["first", "second"]) {
    const requests = [];
    const client = newClient(url, accept, requests);
    const result = await client.query({ query, variables: { key } });
    if (result.error) {
      throw result.error;
    }
    outcome[which] = { requests, data: result.data };
  }
  return outcome;
}

async function main() {
  const [url, key] = process.argv.slice(2);
  if (!url || !key) {
    console.error("usage: node apollo-persisted.mjs <graphql url> <snippet key>");
    return 2;
  }
  const results = {};
  for (const accept of ACCEPTS) {
    results[accept] = await run(url, key, accept);
  }
  console.log(JSON.stringify(results));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`the persisted-query check could not run: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 2;
  },
);
