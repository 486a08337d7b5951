/* What a device's TLS port does with the `ca_pem` it was handed (docs/ports.md, "Connecting to the broker in
 * production"), with Debian's mbedTLS: parse the whole PEM with one mbedtls_x509_crt_parse, then verify a
 * broker certificate against that list, as the TLS handshake's chain check does.
 *
 * usage: ca_bundle_check CA_PEM_FILE BROKER_CERT_FILE
 * prints "parsed N ret R" and "verify F" (F: mbedtls_x509_crt_verify's flags, 0 = trusted); exit 0 if both ran. */
#include <stdio.h>
#include <stdlib.h>

#include <mbedtls/x509_crt.h>

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = calloc((size_t)n + 1, 1); /* + its NUL: mbedTLS takes a PEM's length with it */
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n + 1;
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    size_t ca_len = 0, crt_len = 0;
    unsigned char *ca_pem = read_all(argv[1], &ca_len), *crt_pem = read_all(argv[2], &crt_len);
    if (ca_pem == NULL || crt_pem == NULL) return 2;
    mbedtls_x509_crt anchors, broker;
    mbedtls_x509_crt_init(&anchors);
    mbedtls_x509_crt_init(&broker);
    int ret = mbedtls_x509_crt_parse(&anchors, ca_pem, ca_len);
    int n = 0;
    for (const mbedtls_x509_crt *c = &anchors; c != NULL && c->raw.len > 0; c = c->next) n++;
    printf("parsed %d ret %d\n", n, ret);
    if (mbedtls_x509_crt_parse(&broker, crt_pem, crt_len) != 0) return 2;
    uint32_t flags = 0;
    mbedtls_x509_crt_verify(&broker, &anchors, NULL, NULL, &flags, NULL, NULL);
    printf("verify %u\n", (unsigned)flags);
    mbedtls_x509_crt_free(&anchors);
    mbedtls_x509_crt_free(&broker);
    free(ca_pem);
    free(crt_pem);
    return 0;
}
