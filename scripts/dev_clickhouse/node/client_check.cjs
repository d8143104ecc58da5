// Runs ClickHouse's official Node.js client (@clickhouse/client) against a
// server and prints what it got as one JSON object; scripts/dev_clickhouse/
// test_clients.py checks it.  Usage: node client_check.cjs CLIENT_DIR URL
// (CLIENT_DIR holds node_modules/@clickhouse/client; the password of user
// `default` comes from the variable CLICKHOUSE_PASSWORD).
"use strict";
const path = require("path");

const [clientDir, url] = process.argv.slice(2);
const { createClient, ClickHouseError } = require(path.join(clientDir, "node_modules", "@clickhouse", "client"));
const ROWS = 20000;

async function withClient(options, body) {
  const client = createClient({ url, username: "default", password: process.env.CLICKHOUSE_PASSWORD || "", ...options });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

async function insertAndCount(client, table) {
  await client.command({ query: `CREATE TABLE ${table} (id UInt64, s String) ENGINE = MergeTree ORDER BY id` });
  const values = [];
  for (let i = 0; i < ROWS; i++) values.push({ id: i, s: `row-${i}` });
  await client.insert({ table, values, format: "JSONEachRow" });
  const rs = await client.query({ query: `SELECT count() AS n, sum(id) AS ids, sum(length(s)) AS chars FROM ${table}`, format: "JSONEachRow" });
  return (await rs.json())[0];
}

async function main() {
  const out = { rows_sent: ROWS };
  await withClient({}, async (client) => {
    out.ping = await client.ping();
    const rs = await client.query({
      query: "SELECT {a:UInt32} + 1 AS x, {s:String} AS s, {list:Array(String)} AS list",
      query_params: { a: 41, s: "it's a \\ \"test\"\twith\nlines", list: ["x", "y'"] },
      format: "JSONEachRow",
    });
    out.query_params = await rs.json();
    const settings = await client.query({
      query: "SELECT getSetting('max_threads') AS max_threads",
      clickhouse_settings: { max_threads: 3 },
      format: "JSONEachRow",
    });
    out.settings = await settings.json();
    out.plain_insert = await insertAndCount(client, "node_plain");
    try {
      await client.query({ query: "SELECT * FROM node_no_such_table", format: "JSONEachRow" });
      out.error = null;
    } catch (err) {
      out.error = { is_clickhouse_error: err instanceof ClickHouseError, code: err.code, type: err.type, message: err.message };
    }
  });
  // Request bodies compressed (gzip, the client's only codec on every Node.js), responses too.
  await withClient({ compression: { request: true, response: true } }, async (client) => {
    out.gzip_insert = await insertAndCount(client, "node_gzip");
  });
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
