/*
 * git_tls.c - keeps libgit2 from reading the system's CA certificates when
 * the docket command starts its archive.
 *
 * Debian's libgit2 is built on mbedTLS, and git_libgit2_init parses the
 * whole CA bundle (/etc/ssl/certs/ca-certificates.crt, ~140 PEM
 * certificates) with mbedtls_x509_crt_parse_file, whatever the program
 * will do with it: 12 to 50 ms per process on the bench machine, more than
 * the rest of a `docket act` and its SQLite transaction together. docket's
 * archive is a local bare repository; libgit2 never opens a TLS
 * connection here (no fetch, no push, no remote), so the certificates are
 * never used.
 *
 * The docket binary therefore defines that one mbedTLS function itself: a
 * symbol the executable defines is found before the shared library's, so
 * libgit2's init gets an empty certificate chain at once. Should TLS ever
 * be used through libgit2 in this binary, certificate checks would fail
 * (no trusted roots), never pass. Only the command binary carries this;
 * the library (libdocket.a) and the programs linked with it are
 * unchanged. The store's tests see the same archive either way: the chain
 * is only read by TLS.
 */
/* mbedtls/x509_crt.h is not a build dependency: the chain stays opaque. */
struct mbedtls_x509_crt;
int mbedtls_x509_crt_parse_file(struct mbedtls_x509_crt *chain, const char *path);

int mbedtls_x509_crt_parse_file(struct mbedtls_x509_crt *chain, const char *path)
{
	(void)chain;
	(void)path;
	return 0; /* success, no certificate added */
}
