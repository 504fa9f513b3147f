// A proxyless grpc-js client for the e2e tests: it dials the xDS targets
// given as its arguments (xds:///lb_<id> ...; calls go to the first, the
// others are only resolved, so one xDS client subscribes to all) with the
// bootstrap in
// GRPC_XDS_BOOTSTRAP_CONFIG (or the file GRPC_XDS_BOOTSTRAP names), and for
// every line "N" on its standard input makes N unary calls, one after the
// other, then prints one JSON line: {"hits": {"<backend>": count}, "error": "..."}.
// It stops at the first failed call (error is then set) and exits when its
// input closes.
'use strict';

const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const xds = require('@grpc/grpc-js-xds');

const targets = process.argv.slice(2);
if (targets.length === 0) {
  console.error('usage: client.js xds:///lb_<id> [xds:///lb_<id> ...]');
  process.exit(2);
}
const target = targets[0];
xds.register();

const def = protoLoader.loadSync(path.join(__dirname, 'test_service.proto'));
const TestService = grpc.loadPackageDefinition(def).grpc.testing.TestService;
const client = new TestService(target, grpc.credentials.createInsecure());
const others = targets.slice(1).map((t) => new TestService(t, grpc.credentials.createInsecure()));
for (const c of [client, ...others]) {
  c.getChannel().getConnectivityState(true); // resolve now: subscribe over xDS
}

function call() {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 5000);
    client.UnaryCall({}, new grpc.Metadata({ waitForReady: true }), { deadline }, (err, res) => {
      if (err) {
        reject(err);
      } else {
        resolve(res.hostname);
      }
    });
  });
}

async function sample(n) {
  const hits = {};
  for (let i = 0; i < n; i++) {
    try {
      const host = await call();
      hits[host] = (hits[host] || 0) + 1;
    } catch (err) {
      return { hits, error: `${err.code} ${err.details}` };
    }
  }
  return { hits, error: null };
}

// Lines are served one at a time, in order.
let queue = Promise.resolve();
const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const n = parseInt(line, 10);
  queue = queue.then(async () => {
    const result = Number.isInteger(n) && n > 0 ? await sample(n) : { hits: {}, error: `bad request ${JSON.stringify(line)}` };
    process.stdout.write(JSON.stringify(result) + '\n');
  });
});
lines.on('close', () => {
  queue.then(() => {
    client.close();
    others.forEach((c) => c.close());
    process.exit(0);
  });
});
