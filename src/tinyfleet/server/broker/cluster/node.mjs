// One node of tinyfleet's clustered MQTT 3.1.1 broker (docs/scaling.md, "Past one machine").
//
// Aedes with its Redis persistence (sessions, subscriptions, queued messages, retained messages, wills) and a
// Redis-backed emitter (a message published on one node reaches subscribers on every node): any number of
// nodes on one Redis make one broker. Identities live in the same Redis, written by fleet-server
// (server/broker/cluster_identities.py): `tinyfleet:identity:device:<id>` and `tinyfleet:identity:server:<user>`
// each hold a `$7$` PBKDF2-SHA512 hash, as the embedded Mosquitto's identity files do. The server drops a
// changed or removed identity's live sessions by publishing its name on the Redis channel `tinyfleet:kick`;
// every node closes its connections of that user.
//
// One change to Aedes' order: it answers a QoS 1 PUBLISH with PUBACK before it stores the message for
// persistent sessions. A node killed in between would lose a report the device already forgot, so this node
// stores and forwards first (in authorizePublish) and lets the PUBACK follow.

import net from 'node:net'
import tls from 'node:tls'
import { readFileSync } from 'node:fs'
import { pbkdf2, timingSafeEqual } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Aedes } from 'aedes'
import Redis from 'ioredis'
import redisPersistence from 'aedes-persistence-redis'
import redisEmitter from 'mqemitter-redis'
import { MAX_PAYLOAD, clientIdAllowed, mayPublish, mayReceive, maySubscribe, validDeviceId } from './acl.mjs'

const { values: opt } = parseArgs({
  options: {
    id: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '1883' },
    'redis-host': { type: 'string', default: '127.0.0.1' },
    'redis-port': { type: 'string', default: '6379' },
    // A file holding Redis' password (requirepass): not on the command line, where `ps` shows it.
    'redis-password-file': { type: 'string' },
    // TLS: the listener's certificate chain and key (PEM); without them it listens in clear text.
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' }
  }
})
function fail (message) {
  console.error(`tinyfleet-broker-node: ${message}`)
  process.exit(2)
}
if (!opt.id) fail('--id is required')
if (Boolean(opt['tls-cert']) !== Boolean(opt['tls-key'])) fail('--tls-cert and --tls-key go together')
function readSecret (path, what) {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`${what} ${path}: ${err.code || err.message}`)
  }
}
function orFail (fn) {
  try {
    return fn()
  } catch (err) {
    fail(err.message)
  }
}
// disableClientInfo: ioredis 5.8.2 and later send CLIENT SETINFO before the ready check's INFO, and a
// SUBSCRIBE queued meanwhile (mqemitter-redis subscribes at once) can go out first: INFO is then refused in
// subscriber mode and the node dies at start ("Connection in subscriber mode", ioredis issue #2037, seen in
// a make test run).
const redisOpts = { host: opt['redis-host'], port: Number(opt['redis-port']), maxRetriesPerRequest: 2, disableClientInfo: true }
if (opt['redis-password-file']) {
  redisOpts.password = orFail(() => readSecret(opt['redis-password-file'], '--redis-password-file')).replace(/\r?\n$/, '')
}
const KEY = 'tinyfleet:identity:'
const KICK = 'tinyfleet:kick'

// Aedes drops a message for a client when it already delivered one with a higher counter from the same node
// (meant for overlapping subscriptions). Its QoS 1 path stores a message in Redis before it emits it, so two
// messages published at once can be emitted out of counter order: the lower one was dropped, left queued in
// the session and never sent (found by tests/server/cluster/test_cluster_failover.py). QoS 1 is at least
// once: a client with overlapping subscriptions may now get a message twice, which the server drops anyway.
const NO_DEDUPE = new Proxy(Object.create(null), { get: () => 0, set: () => true })

// Redis reachable and the password right, or one line saying which it is (before any client that retries).
const probe = new Redis({ ...redisOpts, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
let probeError = null // the cause (refused, wrong password); the promise only says the connection closed
probe.on('error', (err) => { probeError = probeError || err })
try {
  await probe.connect()
  await probe.ping()
} catch (err) {
  fail(`Redis at ${redisOpts.host}:${redisOpts.port}: ${(probeError || err).message}`)
} finally {
  probe.disconnect()
}

const store = new Redis(redisOpts)
const kicks = new Redis(redisOpts)
const principals = new Map() // user name -> Set of this node's clients authenticated as it

function checkHash (password, encoded, done) {
  const parts = typeof encoded === 'string' ? encoded.split('$') : []
  if (parts.length !== 5 || parts[1] !== '7' || !/^[0-9]{1,7}$/.test(parts[2])) return done(false)
  const salt = Buffer.from(parts[3], 'base64')
  const want = Buffer.from(parts[4], 'base64')
  if (want.length !== 64) return done(false)
  pbkdf2(password, salt, Number(parts[2]), 64, 'sha512', (err, got) => done(!err && timingSafeEqual(got, want)))
}

async function lookup (username) {
  const [server, device] = await store.mget(KEY + 'server:' + username, KEY + 'device:' + username)
  if (server !== null) return { kind: 'server', name: username, hash: server }
  if (device !== null) return { kind: 'device', name: username, hash: device }
  return null
}

function refuse (callback) {
  const err = new Error('not authorized')
  err.returnCode = 5
  callback(err, null)
}

const aedes = await Aedes.createBroker({
  id: opt.id,
  maxClientsIdLength: 64,
  heartbeatInterval: 5000, // a dead node's clients' wills are published about 4 heartbeats later
  persistence: redisPersistence({ ...redisOpts, maxSessionDelivery: 1000000 }),
  mq: redisEmitter({ ...redisOpts }),

  preConnect (client, packet, callback) {
    client.duplicates = NO_DEDUPE
    callback(null, true)
  },

  authenticate (client, username, password, callback) {
    if (!validDeviceId(username) || !password || password.length > 256) return refuse(callback)
    lookup(username).then((who) => {
      if (who === null || !clientIdAllowed(who, client.id)) return refuse(callback)
      checkHash(password, who.hash, (ok) => {
        if (!ok) return refuse(callback)
        client.principal = { kind: who.kind, name: who.name }
        client.hashAtConnect = who.hash
        callback(null, true)
      })
    }, () => refuse(callback))
  },

  authorizePublish (client, packet, callback) {
    const who = client ? client.principal : willOwner(packet)
    if (!who || !mayPublish(who, packet.topic)) return callback(new Error('publish not authorized'))
    if (who.kind === 'device' && packet.payload.length > MAX_PAYLOAD) return callback(new Error('payload too large'))
    if (!client || packet.qos === 0) return callback(null)
    // Store for every persistent session and forward, then let Aedes send the PUBACK (see the top).
    basePublish(packet, client, (err) => {
      if (err) return callback(err)
      packet[FORWARDED] = true
      callback(null)
    })
  },

  authorizeSubscribe (client, sub, callback) {
    callback(null, client.principal && maySubscribe(client.principal, sub.topic) ? sub : null)
  },

  authorizeForward (client, packet) {
    return client.principal && mayReceive(client.principal, packet.topic) ? packet : null
  }
})

// A will that another node publishes for a client of a dead node: the will is the device's own presence.
function willOwner (packet) {
  const id = packet.clientId
  return validDeviceId(id) ? { kind: 'device', name: id } : null
}

const FORWARDED = Symbol('forwarded')
const basePublish = aedes.publish.bind(aedes)
aedes.publish = function publish (packet, client, done) {
  if (typeof client === 'function') return basePublish(packet, client)
  if (packet[FORWARDED]) return (done || (() => {}))()
  return basePublish(packet, client, done)
}

function closeAll (name) {
  for (const c of principals.get(name) || []) c.close()
}

aedes.on('client', (client) => {
  const name = client.principal.name
  if (!principals.has(name)) principals.set(name, new Set())
  principals.get(name).add(client)
  // A kick that came between this client's password check and now found nothing to close: look again.
  lookup(name).then((who) => {
    if (who === null || who.hash !== client.hashAtConnect) client.close()
  }, () => client.close())
})
aedes.on('clientDisconnect', (client) => {
  const set = client.principal && principals.get(client.principal.name)
  if (set) {
    set.delete(client)
    if (set.size === 0) principals.delete(client.principal.name)
  }
})
aedes.on('clientError', () => {}) // a refused publish closes the connection; nothing to log per client

await kicks.subscribe(KICK)
kicks.on('message', (_channel, name) => closeAll(name))

function tlsFiles () {
  return { cert: readSecret(opt['tls-cert'], '--tls-cert'), key: readSecret(opt['tls-key'], '--tls-key') }
}

let server
if (opt['tls-cert']) {
  server = tls.createServer({ ...orFail(tlsFiles), minVersion: 'TLSv1.2' }, aedes.handle)
  // The fleet's broker CA rotation installs a new certificate, then signals every node (docs/operations.md).
  process.on('SIGHUP', () => {
    try {
      server.setSecureContext({ ...tlsFiles(), minVersion: 'TLSv1.2' })
      console.log(`tinyfleet-broker-node ${opt.id} reloaded its certificate`)
    } catch (err) {
      console.error(`tinyfleet-broker-node ${opt.id} kept its certificate: ${err.message}`)
    }
  })
} else {
  server = net.createServer(aedes.handle)
}
server.on('tlsClientError', () => {}) // a client that fails the handshake is its own problem, not the node's
server.listen(Number(opt.port), opt.host, () => {
  const a = server.address()
  const scheme = opt['tls-cert'] ? ' (TLS)' : ''
  console.log(`tinyfleet-broker-node ${opt.id} listening on ${a.address}:${a.port}${scheme}`)
})
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close()
    aedes.close(() => process.exit(0))
  })
}
