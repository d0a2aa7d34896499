/*
 * cairn — one binary, one subcommand per role (DESIGN.md, "The parts").
 */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"
#include "gateway/gw.h"
#include "manager/manager.h"
#include "node/node.h"

#define CAIRN_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairn <command> [options]\n\n"
            "  node       a data node: one replica of one shard (RESP on --port, default 7001)\n"
            "  manager    cluster management: registry, shard configurations, failover\n"
            "             (RESP on --port, default 7100; one active per cluster via etcd)\n"
            "  gateway    the client endpoint: routes every key to its shard (default :6380)\n"
            "  ctl        operator CLI: status, shard create, switchover, node weight\n"
            "  version    print the version\n\n"
            "Run `cairn <command> --help` for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "node") == 0) return node_main(argc, argv);
    if (strcmp(argv[1], "manager") == 0) return manager_main(argc, argv);
    if (strcmp(argv[1], "ctl") == 0) return ctl_main(argc, argv);
    if (strcmp(argv[1], "gateway") == 0) return gateway_main(argc, argv);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("cairn %s\n", CAIRN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "cairn: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
