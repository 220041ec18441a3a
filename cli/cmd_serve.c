/* cmd_serve.c - docket serve: the REST API, the web inbox, timers and
 * webhook dispatch in one process, until SIGTERM or Ctrl-C. */
#include "cli/cli.h"

#include "api/api.h"
#include "util/error.h"
#include "web-hooks/hooks.h"

#include <getopt.h>
#include <stdlib.h>

static int number(const char *arg, const char *opt, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v = strtoul(arg, &end, 10);
	if (*end || end == arg || v < 1 || v > max)
		return dk_cli_usage("serve", "%s wants a number from 1 to %lu, not '%s'", opt, max,
		                    arg);
	*out = v;
	return 0;
}

int cmd_serve(dk_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"address-file", required_argument, NULL, 'a'},
	    {"threads", required_argument, NULL, 't'},
	    {"max-connections", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"max-upload", required_argument, NULL, 'u'},
	    {"no-timers", no_argument, NULL, 'N'},
	    {"no-hooks", no_argument, NULL, 'H'},
	    {"public-url", required_argument, NULL, 'P'},
	    {NULL, 0, NULL, 0},
	};
	dk_serve_opts o = DK_SERVE_OPTS_INIT;
	unsigned long v = 0;
	int c, error;

	/* MHD serves; libcurl sends the webhooks and checks --public-url;
	 * flows are XML and tokens, links and signatures OpenSSL's */
	if ((error = dk_cli_need(DK_NEED_MHD | DK_NEED_CURL | DK_NEED_XML | DK_NEED_CRYPTO,
	                         "serve")) < 0)
		return error;
	optind = 0;
	opterr = 0;
	o.home = cli->home;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': o.listen = optarg; break;
		case 'a': o.addr_file = optarg; break;
		case 't':
			if ((error = number(optarg, "--threads", 256, &v)) < 0)
				return error;
			o.threads = (unsigned)v;
			break;
		case 'c':
			if ((error = number(optarg, "--max-connections", 65536, &v)) < 0)
				return error;
			o.max_conns = (unsigned)v;
			break;
		case 'T':
			if ((error = number(optarg, "--timeout", 3600, &v)) < 0)
				return error;
			o.timeout_s = (unsigned)v;
			break;
		case 'b':
			if ((error = number(optarg, "--max-body", 1UL << 30, &v)) < 0)
				return error;
			o.max_body = v;
			break;
		case 'u':
			if ((error = number(optarg, "--max-upload", 1UL << 40, &v)) < 0)
				return error;
			o.max_upload = v;
			break;
		case 'N': o.timers = 0; break;
		case 'H': o.hooks = 0; break;
		case 'P':
			/* The base of the links in webhook payloads (inbox and
			 * action links): the same setting the payload builder
			 * reads for every command, DOCKET_BASE_URL. */
			if (dk_hook_url_check(optarg) < 0)
				return dk_cli_usage("serve", "--public-url: %s", dk_error_last());
			setenv("DOCKET_BASE_URL", optarg, 1);
			break;
		default: return dk_cli_usage("serve", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return dk_cli_usage("serve", "serve takes no arguments");
	return dk_serve(&o);
}
