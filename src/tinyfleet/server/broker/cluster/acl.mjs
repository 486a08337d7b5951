// Who may connect, publish and subscribe on a tinyfleet broker node: pure functions, no I/O.
// The same identities and ACL as the embedded Mosquitto (docs/device-protocol.md, "ACL"): a device's
// username, client id and device id are one string; a server user reads and writes fleet/#, and may also
// hold the ingest-slot sessions (client ids starting with SLOT_PREFIX, docs/device-protocol.md,
// "Ingest partitions"), which no device id can name (a device id starts with a letter or a digit).

export const DEVICE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
export const SLOT_PREFIX = '_tf-ingest-'
export const MAX_PAYLOAD = 4864 // docs/operations.md, "Broker limits"

const DEVICE_WRITES = ['state', 'telemetry', 'presence']

export function validDeviceId (id) {
  return typeof id === 'string' && DEVICE_ID_RE.test(id)
}

// May this principal connect with this client id? (The password is checked elsewhere.)
export function clientIdAllowed (principal, clientId) {
  if (principal.kind === 'device') return clientId === principal.name
  return clientId === principal.name || (clientId.startsWith(SLOT_PREFIX) && clientId.length <= 64)
}

// A device may publish only its own state, telemetry and presence, in any shard level (the server drops a
// message whose shard is not the one its id hashes to).
export function mayPublish (principal, topic) {
  if (principal.kind === 'server') return topic.startsWith('fleet/')
  const p = topic.split('/')
  return p.length === 5 && p[0] === 'fleet' && p[1] === 'd' && p[2].length > 0 && p[3] === principal.name &&
    DEVICE_WRITES.includes(p[4])
}

function readPatterns (principal) {
  if (principal.kind === 'server') return ['fleet/#']
  return [`fleet/d/+/${principal.name}/desired`, 'fleet/bundles/#', 'fleet/blobs/#']
}

// Does every topic the filter can match fall inside the pattern? Level by level: a pattern `#` takes the
// rest, a pattern `+` takes one level of anything (a filter `+` included), a literal needs the same literal.
export function filterWithin (filter, pattern) {
  const f = filter.split('/')
  const p = pattern.split('/')
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true
    if (i >= f.length) return false
    if (f[i] === '#') return false
    if (p[i] === '+') continue
    if (f[i] === '+' || f[i] !== p[i]) return false
  }
  return f.length === p.length
}

export function maySubscribe (principal, filter) {
  if (filter.startsWith('$')) return false
  return readPatterns(principal).some((pattern) => filterWithin(filter, pattern))
}

// A topic (no wildcards) the principal may receive.
export function mayReceive (principal, topic) {
  return maySubscribe(principal, topic)
}
