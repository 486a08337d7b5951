/* tinyfleet identity plugin for Mosquitto 2.0 (docs/scaling.md, "Device identity").

Theory of operation. Every broker identity is one file, `<identities_dir>/<shard>/<username>` for a device
(shard: the low byte of the FNV-1a hash of its id, two hex digits, as tinyfleet.protocol.topics.shard) and
`<identities_dir>/server/<username>` for the server's own users (plugin_opt_server_users, comma-separated).
The file holds the `$7$` PBKDF2-HMAC-SHA512 hash that mosquitto_passwd writes. The server adds or rotates an
identity by replacing that one file and revokes it by unlinking it, so a change costs the broker nothing and
no reload: every CONNECT reads the one file it needs (no cache that could go stale, no memory per device).

A username that is neither a server user nor a device id by the grammar ([A-Za-z0-9][A-Za-z0-9._-]{0,63})
is denied before any path is built, so no username can name a file outside the directory.

The server's users publish `apply <request-id> <username>` to $CONTROL/tinyfleet/v1 after changing that
identity's file: the plugin drops the live session of that client (its client id is its username:
use_username_as_clientid) and answers `<request-id> <state>` on $CONTROL/tinyfleet/v1/response to the
requester only, where state says what the file now holds as the broker's user reads it: present, absent,
invalid (not a hash) or unreadable. Requests from anyone else are refused.
*/

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define ID_MAX 64
#define SERVER_USERS_MAX 16
#define PATH_CAP 4096
#define HASH_FILE_CAP 256          /* a `$7$` line is about 120 bytes */
#define ITERATIONS_MAX 10000000L   /* bounds the work one CONNECT can cost */
#define SALT_CAP 64
#define DIGEST_BYTES 64            /* SHA-512 */
#define REQUEST_ID_MAX 40
#define CONTROL_TOPIC "$CONTROL/tinyfleet/v1"
#define RESPONSE_TOPIC "$CONTROL/tinyfleet/v1/response"

static mosquitto_plugin_id_t *plugin_id;
static char identities_dir[PATH_CAP];
static char server_users[SERVER_USERS_MAX][ID_MAX + 1];
static int server_user_count;

static bool id_char(unsigned char c, bool first)
{
	if((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
	return !first && (c == '.' || c == '_' || c == '-');
}

/* The device id grammar (tinyfleet.protocol.topics.DEVICE_ID_RE), over exactly `n` bytes. */
static bool valid_id(const char *s, size_t n)
{
	if(n == 0 || n > ID_MAX) return false;
	for(size_t i = 0; i < n; i++){
		if(!id_char((unsigned char)s[i], i == 0)) return false;
	}
	return true;
}

static bool is_server_user(const char *s)
{
	for(int i = 0; i < server_user_count; i++){
		if(strcmp(server_users[i], s) == 0) return true;
	}
	return false;
}

static void shard(const char *id, char out[3])
{
	uint32_t h = 2166136261u;
	for(const unsigned char *p = (const unsigned char *)id; *p; p++){
		h = (h ^ *p) * 16777619u;
	}
	snprintf(out, 3, "%02x", (unsigned)(h & 0xFF));
}

/* The identity file of `username`, or false when the username names no identity. */
static bool identity_path(const char *username, char *out, size_t cap)
{
	if(username == NULL || !valid_id(username, strnlen(username, ID_MAX + 1))) return false;
	int n;
	if(is_server_user(username)){
		n = snprintf(out, cap, "%s/server/%s", identities_dir, username);
	}else{
		char s[3];
		shard(username, s);
		n = snprintf(out, cap, "%s/%s/%s", identities_dir, s, username);
	}
	return n > 0 && (size_t)n < cap;
}

static int b64_value(unsigned char c)
{
	if(c >= 'A' && c <= 'Z') return c - 'A';
	if(c >= 'a' && c <= 'z') return c - 'a' + 26;
	if(c >= '0' && c <= '9') return c - '0' + 52;
	if(c == '+') return 62;
	if(c == '/') return 63;
	return -1;
}

/* Standard base64 with padding; the decoded length, or -1. */
static int b64_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	if(n == 0 || n % 4 != 0) return -1;
	size_t pad = (in[n - 1] == '=') + (n >= 2 && in[n - 2] == '=');
	size_t len = n / 4 * 3 - pad;
	if(len > cap) return -1;
	size_t o = 0;
	for(size_t i = 0; i < n; i += 4){
		int v[4];
		for(int k = 0; k < 4; k++){
			bool padding = in[i + k] == '=' && i + 4 == n && k >= 4 - (int)pad;
			v[k] = padding ? 0 : b64_value((unsigned char)in[i + k]);
			if(v[k] < 0) return -1;
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		for(int k = 0; k < 3 && o < len; k++){
			out[o++] = (unsigned char)(w >> (16 - 8 * k));
		}
	}
	return (int)len;
}

struct pbkdf2_hash {
	long iterations;
	unsigned char salt[SALT_CAP];
	int salt_len;
	unsigned char digest[DIGEST_BYTES];
};

/* `$7$<iterations>$<base64 salt>$<base64 SHA-512 digest>`, optionally ending in one newline. */
static bool parse_hash(char *text, size_t n, struct pbkdf2_hash *h)
{
	if(n > 0 && text[n - 1] == '\n') text[--n] = '\0';
	if(n < 4 || strncmp(text, "$7$", 3) != 0) return false;
	char *iter = text + 3;
	char *salt = strchr(iter, '$');
	if(salt == NULL) return false;
	*salt++ = '\0';
	char *digest = strchr(salt, '$');
	if(digest == NULL) return false;
	*digest++ = '\0';
	if(*iter == '\0' || strlen(iter) > 8) return false;
	h->iterations = 0;
	for(const char *p = iter; *p; p++){
		if(*p < '0' || *p > '9') return false;
		h->iterations = h->iterations * 10 + (*p - '0');
	}
	if(h->iterations < 1 || h->iterations > ITERATIONS_MAX) return false;
	h->salt_len = b64_decode(salt, strlen(salt), h->salt, sizeof(h->salt));
	if(h->salt_len < 1) return false;
	return b64_decode(digest, strlen(digest), h->digest, sizeof(h->digest)) == DIGEST_BYTES;
}

enum identity_state { PRESENT, ABSENT, INVALID, UNREADABLE };

static const char *state_name(enum identity_state s)
{
	switch(s){
		case PRESENT: return "present";
		case ABSENT: return "absent";
		case INVALID: return "invalid";
		default: return "unreadable";
	}
}

/* Read and parse one identity file into `h` (the caller's memory: nothing is kept). */
static enum identity_state load_identity(const char *path, struct pbkdf2_hash *h)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if(fd < 0) return errno == ENOENT ? ABSENT : UNREADABLE;
	char text[HASH_FILE_CAP + 1];
	size_t n = 0;
	for(;;){
		ssize_t r = read(fd, text + n, sizeof(text) - 1 - n);
		if(r < 0 && errno == EINTR) continue;
		if(r < 0){
			close(fd);
			return UNREADABLE;
		}
		if(r == 0 || (n += (size_t)r) == sizeof(text) - 1) break;
	}
	close(fd);
	text[n] = '\0';
	if(n == sizeof(text) - 1 || strlen(text) != n) return INVALID;  /* too long, or a NUL inside */
	return parse_hash(text, n, h) ? PRESENT : INVALID;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_basic_auth *ed = event_data;
	char path[PATH_CAP];
	struct pbkdf2_hash h;
	if(ed->password == NULL || !identity_path(ed->username, path, sizeof(path))) return MOSQ_ERR_AUTH;
	if(load_identity(path, &h) != PRESENT) return MOSQ_ERR_AUTH;
	unsigned char digest[DIGEST_BYTES];
	int ok = PKCS5_PBKDF2_HMAC(ed->password, (int)strlen(ed->password), h.salt, h.salt_len, (int)h.iterations,
			EVP_sha512(), DIGEST_BYTES, digest);
	bool match = ok == 1 && CRYPTO_memcmp(digest, h.digest, DIGEST_BYTES) == 0;
	OPENSSL_cleanse(digest, sizeof(digest));
	return match ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
}

static void respond(const char *client_id, const char *request_id, size_t request_id_len, const char *state)
{
	char out[REQUEST_ID_MAX + 32];
	int n = snprintf(out, sizeof(out), "%.*s %s", (int)request_id_len, request_id, state);
	if(n > 0 && (size_t)n < sizeof(out)){
		mosquitto_broker_publish_copy(client_id, RESPONSE_TOPIC, n, out, 1, false, NULL);
	}
}

static int ignore(const char *requester)
{
	mosquitto_log_printf(MOSQ_LOG_WARNING, "tinyfleet identity: malformed request from %s ignored", requester);
	return MOSQ_ERR_SUCCESS;
}

/* `apply <request-id> <username>` from a server user (module comment). */
static int on_control(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)userdata;
	struct mosquitto_evt_control *ed = event_data;
	const char *requester = mosquitto_client_username(ed->client);
	const char *client_id = mosquitto_client_id(ed->client);
	if(requester == NULL || !is_server_user(requester) || client_id == NULL) return MOSQ_ERR_ACL_DENIED;

	/* A malformed request is ignored, not answered (an error return would disconnect the server). */
	const char *p = ed->payload;
	size_t len = ed->payloadlen;
	if(len < 7 || memcmp(p, "apply ", 6) != 0) return ignore(requester);
	const char *rid = p + 6;
	const char *sp = memchr(rid, ' ', len - 6);
	if(sp == NULL) return ignore(requester);
	size_t rid_len = (size_t)(sp - rid);
	if(!valid_id(rid, rid_len) || rid_len > REQUEST_ID_MAX) return ignore(requester);
	const char *user = sp + 1;
	size_t user_len = len - (size_t)(user - p);
	char username[ID_MAX + 1];
	char path[PATH_CAP];
	if(!valid_id(user, user_len) || user_len > ID_MAX){
		respond(client_id, rid, rid_len, "refused");
		return MOSQ_ERR_SUCCESS;
	}
	memcpy(username, user, user_len);
	username[user_len] = '\0';
	if(is_server_user(username) || !identity_path(username, path, sizeof(path))){
		respond(client_id, rid, rid_len, "refused");  /* kicking a server user would drop the server */
		return MOSQ_ERR_SUCCESS;
	}
	mosquitto_kick_client_by_clientid(username, true);  /* O(1): a hash lookup by client id */
	struct pbkdf2_hash h;
	const char *state = state_name(load_identity(path, &h));
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "tinyfleet identity: %s %s", username, state);
	respond(client_id, rid, rid_len, state);
	return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)userdata;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "tinyfleet identity: broker reloaded its configuration");
	return MOSQ_ERR_SUCCESS;
}

static bool parse_server_users(const char *list)
{
	server_user_count = 0;
	const char *p = list;
	while(*p){
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if(server_user_count == SERVER_USERS_MAX || !valid_id(p, n)) return false;
		memcpy(server_users[server_user_count], p, n);
		server_users[server_user_count++][n] = '\0';
		p += n + (end != NULL);
	}
	return server_user_count > 0;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts,
		int opt_count)
{
	(void)userdata;
	const char *dir = NULL;
	const char *users = NULL;
	for(int i = 0; i < opt_count; i++){
		if(strcmp(opts[i].key, "identities_dir") == 0) dir = opts[i].value;
		if(strcmp(opts[i].key, "server_users") == 0) users = opts[i].value;
	}
	if(dir == NULL || dir[0] != '/' || strlen(dir) >= sizeof(identities_dir) - ID_MAX - 16){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tinyfleet identity: plugin_opt_identities_dir must be an absolute path");
		return MOSQ_ERR_INVAL;
	}
	if(users == NULL || !parse_server_users(users)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tinyfleet identity: plugin_opt_server_users must be 1-%d device-id-"
				"shaped names, comma-separated", SERVER_USERS_MAX);
		return MOSQ_ERR_INVAL;
	}
	strcpy(identities_dir, dir);
	plugin_id = identifier;
	int rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC, NULL);
	if(rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "tinyfleet identity: identities in %s, %d server user(s)",
				identities_dir, server_user_count);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_CONTROL, on_control, CONTROL_TOPIC);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL);
	return MOSQ_ERR_SUCCESS;
}
