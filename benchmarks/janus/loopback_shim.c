/* LD_PRELOAD shim for the benchmark's Janus: report `lo` as an ordinary interface.
 *
 * Janus (libnice) skips interfaces flagged IFF_LOOPBACK when it gathers ICE host candidates, so
 * inside a loopback-only network namespace it would offer none.  This wraps getifaddrs() and
 * clears IFF_LOOPBACK on `lo`, so that Janus gathers 127.0.0.1.  Built at set-up time:
 *     cc -shared -fPIC -o benchmarks/.cache/janus-loopback-shim.so benchmarks/janus/loopback_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real_getifaddrs)(struct ifaddrs **) = NULL;
    if (real_getifaddrs == NULL)
        real_getifaddrs = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int rc = real_getifaddrs(ifap);
    if (rc == 0)
        for (struct ifaddrs *ifa = *ifap; ifa != NULL; ifa = ifa->ifa_next)
            if (ifa->ifa_name != NULL && strcmp(ifa->ifa_name, "lo") == 0)
                ifa->ifa_flags &= ~IFF_LOOPBACK;
    return rc;
}
