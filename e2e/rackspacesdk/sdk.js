// Runs the load-balancer calls of pkgcloud's Rackspace provider, used as
// its documentation shows (docs/providers/rackspace/loadbalancer.md),
// against lbaasd. Environment: AUTH_URL (lbaasd's identity endpoint),
// USERNAME, API_KEY, REGION, NODE_A, NODE_B (loopback node addresses).
// Each step prints one line "ok <step>"; the first failure prints
// "FAIL <step>: <error>" and exits 1.
'use strict';

const assert = require('assert');
const util = require('util');
const pkgcloud = require('pkgcloud');

const rackspace = pkgcloud.loadbalancer.createClient({
  provider: 'rackspace',
  username: process.env.USERNAME,
  apiKey: process.env.API_KEY,
  region: process.env.REGION,
  authUrl: process.env.AUTH_URL,
});
const lbs = pkgcloud.providers.rackspace.loadbalancer;

// pkgcloud 2.2.0 joins URLs with url-join 4, which refuses numbers
// (pkgcloud issue #679, "TypeError: Url must be a string"): the ids the API
// answers are numbers, as the Rackspace reference shows them, so the
// script passes them as strings, the workaround that issue gives.
const id = (x) => String(typeof x === 'object' ? x.id : x);

// call promisifies one client method (callback last).
const call = (name, ...args) => util.promisify(rackspace[name]).apply(rackspace, args);

let current = '';
async function step(name, fn) {
  current = name;
  const out = await fn();
  console.log('ok ' + name);
  return out;
}

// Changes are accepted at once (202) and applied asynchronously: wait for
// ACTIVE before the next change, as the documentation's
// loadBalancer.refresh / client.getLoadBalancer polling does.
async function active(lb) {
  for (let i = 0; i < 500; i++) {
    const got = await call('getLoadBalancer', id(lb));
    if (got.status === 'ACTIVE') return got;
    if (got.status === 'ERROR') throw new Error('load balancer in ERROR: ' + JSON.stringify(got));
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('load balancer never became ACTIVE');
}

// sum adds up a field of usage records.
const sum = (records, field) => records.reduce((n, r) => n + (r[field] || 0), 0);

async function main() {
  // Statistics and usage of the load balancer the Go test sent real gRPC
  // calls through (TRAFFIC_LB: TRAFFIC_CALLS calls, TRAFFIC_ERRORS failed).
  const traffic = process.env.TRAFFIC_LB;
  const calls = Number(process.env.TRAFFIC_CALLS);
  const errors = Number(process.env.TRAFFIC_ERRORS);
  const stats = await step('getStats', () => call('getStats', traffic));
  assert.strictEqual(stats.requests, calls, JSON.stringify(stats));
  assert.strictEqual(stats.requestErrors, errors, JSON.stringify(stats));
  assert.strictEqual(stats.connectTimeOut, 0, JSON.stringify(stats));
  const current = await step('getCurrentUsage', () => call('getCurrentUsage', traffic));
  const records = current.loadBalancerUsageRecords;
  assert.strictEqual(records[0].eventType, 'CREATE_LOADBALANCER', JSON.stringify(records));
  assert.strictEqual(sum(records, 'requests'), calls, JSON.stringify(records));
  assert.strictEqual(sum(records, 'requestErrors'), errors, JSON.stringify(records));
  const start = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
  const end = new Date(Date.now() + 3600 * 1000).toISOString();
  const historical = await step('getHistoricalUsage', () => call('getHistoricalUsage', traffic, start, end));
  assert.strictEqual(sum(historical.loadBalancerUsageRecords, 'requests'), calls, JSON.stringify(historical));
  const account = await step('getAccountUsage', () => call('getAccountUsage', start, end));
  const mine = account.loadBalancerUsages.find((u) => String(u.loadBalancerId) === traffic);
  assert(mine, JSON.stringify(account));
  assert.strictEqual(sum(mine.loadBalancerUsageRecords, 'requests'), calls, JSON.stringify(mine));
  assert.strictEqual(account.accountUsage.accountUsageRecords.slice(-1)[0].numLoadBalancers, 1, JSON.stringify(account.accountUsage));
  const billable = await step('getBillableLoadBalancers', () => call('getBillableLoadBalancers', start, end, { limit: 10 }));
  assert.deepStrictEqual(billable.map(id), [traffic]);

  const protocols = await step('getProtocols', () => call('getProtocols'));
  assert(protocols.some((p) => p.name === 'HTTP'), JSON.stringify(protocols));
  const algorithms = await step('getAlgorithms', () => call('getAlgorithms'));
  assert(algorithms.some((a) => a.name === 'ROUND_ROBIN'), JSON.stringify(algorithms));
  await step('getAllowedDomains', () => call('getAllowedDomains'));

  let lb = await step('createLoadBalancer with nodes', () => call('createLoadBalancer', {
    name: 'sdk-lb',
    protocol: lbs.Protocols.HTTP,
    virtualIps: [{ type: lbs.VirtualIpTypes.PUBLIC }],
    nodes: [{ address: process.env.NODE_A, port: 8081, condition: 'ENABLED' }],
    algorithm: 'ROUND_ROBIN',
    metadata: [{ key: 'owner', value: 'sdk' }],
  }));
  assert(lb instanceof lbs.LoadBalancer);
  assert.strictEqual(lb.name, 'sdk-lb');
  assert.strictEqual(lb.port, 80);
  assert.strictEqual(lb.nodes.length, 1);
  lb = await active(lb);

  const list = await step('getLoadBalancers', () => call('getLoadBalancers', {}));
  assert(list.some((l) => l.id === lb.id), JSON.stringify(list));
  const got = await step('getLoadBalancer', () => call('getLoadBalancer', id(lb)));
  assert.strictEqual(got.algorithm, 'ROUND_ROBIN');
  assert.strictEqual(got.nodeCount, 1);

  await step('updateLoadBalancer', async () => {
    got.id = id(got);
    got.name = 'sdk-lb-renamed';
    got.algorithm = 'LEAST_CONNECTIONS';
    await call('updateLoadBalancer', got);
  });
  lb = await active(lb);
  assert.strictEqual(lb.name, 'sdk-lb-renamed');
  assert.strictEqual(lb.algorithm, 'LEAST_CONNECTIONS');

  // Nodes.
  const added = await step('addNodes', () => call('addNodes', id(lb), [
    { address: process.env.NODE_B, port: 8082, condition: 'ENABLED', type: 'SECONDARY' },
  ]));
  assert.strictEqual(added.length, 1);
  assert(added[0] instanceof lbs.Node);
  lb = await active(lb);
  let nodes = await step('getNodes', () => call('getNodes', id(lb)));
  assert.strictEqual(nodes.length, 2);
  const second = nodes.find((n) => n.address === process.env.NODE_B);
  await step('updateNode', () => {
    second.id = id(second);
    second.condition = 'DRAINING';
    second.weight = 3;
    return call('updateNode', id(lb), second);
  });
  lb = await active(lb);
  nodes = await call('getNodes', id(lb));
  assert.strictEqual(nodes.find((n) => id(n) === second.id).condition, 'DRAINING');
  await step('getNodeServiceEvents', () => call('getNodeServiceEvents', id(lb)));
  await step('removeNode', () => call('removeNode', id(lb), second));
  lb = await active(lb);
  nodes = await call('getNodes', id(lb));
  assert.strictEqual(nodes.length, 1);

  // Virtual IPs.
  const vipsBefore = lb.virtualIps.length;
  const vip = await step('addIPV6VirtualIp', () => call('addIPV6VirtualIp', id(lb)));
  assert.strictEqual(vip.ipVersion, 'IPV6');
  lb = await active(lb);
  const vips = await step('getVirtualIps', () => call('getVirtualIps', id(lb)));
  assert.strictEqual(vips.length, vipsBefore + 1);
  await step('removeVirtualIp', () => call('removeVirtualIp', id(lb), id(vip)));
  lb = await active(lb);

  // Health monitor.
  await step('updateHealthMonitor', () => call('updateHealthMonitor', id(lb), {
    type: 'HTTP', delay: 10, timeout: 5, attemptsBeforeDeactivation: 2,
    path: '/', statusRegex: '^[234][0-9][0-9]$', bodyRegex: '.*',
  }));
  lb = await active(lb);
  const hm = await step('getHealthMonitor', () => call('getHealthMonitor', id(lb)));
  assert.strictEqual(hm.type, 'HTTP');
  assert.strictEqual(hm.delay, 10);
  await step('removeHealthMonitor', () => call('removeHealthMonitor', id(lb)));
  lb = await active(lb);

  // Session persistence.
  await step('enableSessionPersistence', () => call('enableSessionPersistence', id(lb), 'HTTP_COOKIE'));
  lb = await active(lb);
  const sp = await step('getSessionPersistence', () => call('getSessionPersistence', id(lb)));
  assert.strictEqual(sp.persistenceType, 'HTTP_COOKIE');
  await step('disableSessionPersistence', () => call('disableSessionPersistence', id(lb)));
  lb = await active(lb);

  // Connection logging.
  await step('updateConnectionLogging', () => call('updateConnectionLogging', id(lb), true));
  lb = await active(lb);
  const cl = await step('getConnectionLoggingConfig', () => call('getConnectionLoggingConfig', id(lb)));
  assert.strictEqual(cl.enabled, true);

  // Connection throttle.
  await step('updateConnectionThrottle', () => call('updateConnectionThrottle', id(lb), {
    maxConnections: 100, minConnections: 10, maxConnectionRate: 50, rateInterval: 60,
  }));
  lb = await active(lb);
  const ct = await step('getConnectionThrottleConfig', () => call('getConnectionThrottleConfig', id(lb)));
  assert.strictEqual(ct.maxConnections, 100);
  await step('disableConnectionThrottle', () => call('disableConnectionThrottle', id(lb)));
  lb = await active(lb);

  // Access list.
  await step('addAccessList', () => call('addAccessList', id(lb), [
    { address: '192.0.2.0/24', type: 'DENY' },
    { address: '198.51.100.1', type: 'ALLOW' },
    { address: '203.0.113.0/24', type: 'DENY' },
  ]));
  lb = await active(lb);
  let acl = await step('getAccessList', () => call('getAccessList', id(lb)));
  assert.strictEqual(acl.length, 3);
  await step('deleteAccessListItem', () => call('deleteAccessListItem', id(lb), id(acl[0])));
  lb = await active(lb);
  acl = await call('getAccessList', id(lb));
  assert.strictEqual(acl.length, 2);
  await step('deleteAccessList', () => call('deleteAccessList', id(lb), [acl[0]]));
  lb = await active(lb);
  acl = await call('getAccessList', id(lb));
  assert.strictEqual(acl.length, 1);
  await step('resetAccessList', () => call('resetAccessList', id(lb)));
  lb = await active(lb);
  acl = await call('getAccessList', id(lb));
  assert.strictEqual(acl.length, 0);

  // Content caching: lbaasd refuses to enable it (no proxy cache keeps a
  // load balancer's promises; see the README), with the reference's
  // validation fault, which the SDK reports as an error.
  await step('updateContentCaching (enabling refused)', async () => {
    const err = await call('updateContentCaching', id(lb), true).then(() => null, (e) => e);
    assert(err && err.statusCode === 400, 'enabling content caching: ' + String(err));
    assert(/contentCaching/.test(JSON.stringify(err.result)), JSON.stringify(err.result));
  });
  await step('updateContentCaching', () => call('updateContentCaching', id(lb), false));
  lb = await active(lb);
  const cc = await step('getContentCachingConfig', () => call('getContentCachingConfig', id(lb)));
  assert.strictEqual(cc.enabled, false);

  // Error page.
  await step('setErrorPage', () => call('setErrorPage', id(lb), '<html><body>sdk down</body></html>'));
  lb = await active(lb);
  const page = await step('getErrorPage', () => call('getErrorPage', id(lb)));
  assert.strictEqual(page, '<html><body>sdk down</body></html>');
  await step('deleteErrorPage', () => call('deleteErrorPage', id(lb)));
  lb = await active(lb);

  // SSL termination, with the certificate and key the Go test made.
  await step('updateSSLConfig', () => call('updateSSLConfig', id(lb), {
    securePort: 443, certificate: process.env.SSL_CERT, privatekey: process.env.SSL_KEY,
    enabled: true, secureTrafficOnly: false,
  }));
  lb = await active(lb); // xDS runs with mutual TLS here: the key goes to the fleet's proxies
  const ssl = await step('getSSLConfig', () => call('getSSLConfig', id(lb)));
  assert.strictEqual(ssl.securePort, 443);
  assert.strictEqual(ssl.enabled, true);
  assert.strictEqual(ssl.certificate, process.env.SSL_CERT);
  assert(!('privatekey' in ssl), 'the private key was answered: ' + JSON.stringify(Object.keys(ssl)));
  await step('updateSSLConfig (attributes only)', () => call('updateSSLConfig', id(lb), { securePort: 443, secureTrafficOnly: true }));
  lb = await active(lb);
  assert.strictEqual((await call('getSSLConfig', id(lb))).secureTrafficOnly, true);
  await step('removeSSLConfig', () => call('removeSSLConfig', id(lb)));
  lb = await active(lb);

  // Several nodes at once, then the load balancer goes.
  await call('addNodes', id(lb), [
    { address: process.env.NODE_B, port: 8083, condition: 'ENABLED' },
    { address: process.env.NODE_B, port: 8084, condition: 'DISABLED' },
  ]);
  lb = await active(lb);
  nodes = await call('getNodes', id(lb));
  assert.strictEqual(nodes.length, 3);
  assert.strictEqual(nodes.find((n) => n.port === 8084).status, 'OFFLINE');
  await step('removeNodes', () => call('removeNodes', id(lb), nodes.filter((n) => n.address === process.env.NODE_B)));
  lb = await active(lb);
  assert.strictEqual(lb.nodes.length, 1);

  await step('deleteLoadBalancer', () => call('deleteLoadBalancer', id(lb)));
  const gone = await call('getLoadBalancer', id(lb)).catch((err) => err);
  assert(gone instanceof Error || ['PENDING_DELETE', 'DELETED'].includes(gone.status), String(gone && gone.status));
  // Deleted, it stays billable for the window it existed in.
  const billed = await step('getBillableLoadBalancers (deleted included)', () => call('getBillableLoadBalancers', start, end));
  assert(billed.some((b) => id(b) === id(lb)), JSON.stringify(billed.map(id)));
  console.log('done');
}

main().catch((err) => {
  const detail = err && (err.result || err.body);
  console.log('FAIL ' + current + ': ' + (err && err.stack || err) + (detail ? '\nanswer: ' + JSON.stringify(detail) : ''));
  process.exit(1);
});
