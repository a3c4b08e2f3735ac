// Run the GraphQL-over-HTTP reference audits (graphql-http serverAudits) against a server.
// Usage: node audit.js http://127.0.0.1:8000/graphql
// Prints one line per audit and a summary; exits 1 on any error (a failed MUST) or warning
// (a failed SHOULD), 2 on bad usage or when an audit cannot run at all.
"use strict";

const { serverAudits } = require("graphql-http");

async function main() {
  const url = process.argv[2];
  if (!url) {
    console.error("usage: node audit.js <graphql url>");
    return 2;
  }
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  // one after another: the results read in order, and a small server is not flooded
  for (const audit of serverAudits({ url, fetchFn: fetch })) {
    const result = await audit.fn();
    counts[result.status] += 1;
    const line = `${result.status.padEnd(6)} ${result.id} ${result.name}`;
    if (result.status === "ok") {
      console.log(line);
    } else {
      const body = await result.response.text().catch(() => "");
      console.log(`${line}\n       ${result.reason}\n       body: ${body.slice(0, 300)}`);
    }
  }
  console.log(
    `${counts.ok} ok, ${counts.notice} notices, ${counts.warn} warnings, ${counts.error} errors`,
  );
  return counts.warn + counts.error === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`audit could not run: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 2;
  },
);
