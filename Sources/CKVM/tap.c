#include "ckvm.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int ckvm_tun_set_iff(int fd, const char *name, short flags, char *name_out) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = flags;
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) return -1;
    memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
    name_out[IFNAMSIZ - 1] = 0;
    return 0;
}

int ckvm_tun_set_queue(int fd, int attach) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
    return ioctl(fd, TUNSETQUEUE, &ifr);
}

int ckvm_tun_set_vnet_hdr_size(int fd, int size) { return ioctl(fd, TUNSETVNETHDRSZ, &size); }
int ckvm_tun_set_offload(int fd, unsigned int offload) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)offload); }

/* Runs one SIOCSIF* request on a throwaway AF_INET socket, keeping the ioctl's errno. */
static int netif_ioctl(unsigned long request, struct ifreq *ifr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    int r = ioctl(s, request, ifr);
    int err = errno;
    close(s);
    errno = err;
    return r;
}

static void netif_name(struct ifreq *ifr, const char *ifname) {
    memset(ifr, 0, sizeof *ifr);
    strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
}

static void set_ipv4(struct sockaddr *sa, uint32_t addr) {
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = addr;
}

int ckvm_netif_set_ipv4(const char *ifname, uint32_t addr, uint32_t mask) {
    struct ifreq ifr;
    netif_name(&ifr, ifname);
    set_ipv4(&ifr.ifr_addr, addr);
    if (netif_ioctl(SIOCSIFADDR, &ifr) != 0) return -1;
    netif_name(&ifr, ifname);
    set_ipv4(&ifr.ifr_netmask, mask);
    return netif_ioctl(SIOCSIFNETMASK, &ifr);
}

int ckvm_netif_set_mac(const char *ifname, const uint8_t mac[6]) {
    struct ifreq ifr;
    netif_name(&ifr, ifname);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    return netif_ioctl(SIOCSIFHWADDR, &ifr);
}

int ckvm_netif_set_mtu(const char *ifname, int mtu) {
    struct ifreq ifr;
    netif_name(&ifr, ifname);
    ifr.ifr_mtu = mtu;
    return netif_ioctl(SIOCSIFMTU, &ifr);
}

int ckvm_netif_up(const char *ifname) {
    struct ifreq ifr;
    netif_name(&ifr, ifname);
    if (netif_ioctl(SIOCGIFFLAGS, &ifr) != 0) return -1;
    /* Already up (a TAP prepared by an administrator): nothing to change, and no privilege needed. */
    if (ifr.ifr_flags & IFF_UP) return 0;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return netif_ioctl(SIOCSIFFLAGS, &ifr);
}
