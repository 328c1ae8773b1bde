#!/usr/bin/env bash
# Builds the lab "dr-demo" with plain ip, sysctl and ipvsadm commands: what
# `labctl up dr-demo` does over netlink (this is `labctl up --dry-run`).
# Run it as root on a kernel with IPVS and IPIP. It stops at the first failing
# command. Its namespaces carry labctl's mark, so `labctl down dr-demo` removes
# them; `labctl down --dry-run dr-demo` prints the same teardown as a script.
set -euo pipefail
trap 'echo "failed at line $LINENO: $BASH_COMMAND" >&2' ERR
command -v labagent >/dev/null || { echo "labagent is not on PATH (it serves the lab's agents)" >&2; exit 1; }
command -v ipvsadm >/dev/null || { echo "ipvsadm is not on PATH (it configures IPVS)" >&2; exit 1; }

ip netns add dr-demo-client; ip -n dr-demo-client link set dev lo alias labctl:dr-demo
ip netns add dr-demo-director; ip -n dr-demo-director link set dev lo alias labctl:dr-demo
ip netns add dr-demo-rs1; ip -n dr-demo-rs1 link set dev lo alias labctl:dr-demo
ip netns add dr-demo-rs2; ip -n dr-demo-rs2 link set dev lo alias labctl:dr-demo
# switch lan gets a namespace of its own, so its bridge and ports never touch the host's root
# namespace
ip netns add dr-demo-lan; ip -n dr-demo-lan link set dev lo alias labctl:dr-demo

# client has no IPv6 addresses, so the interfaces made for it get no IPv6 either: no DAD, MLD or
# router solicitations on the wire, and captures show only the lab's own traffic
ip netns exec dr-demo-client sysctl -qw net.ipv6.conf.default.disable_ipv6=1
# director has no IPv6 addresses, so the interfaces made for it get no IPv6 either: no DAD, MLD or
# router solicitations on the wire, and captures show only the lab's own traffic
ip netns exec dr-demo-director sysctl -qw net.ipv6.conf.default.disable_ipv6=1
# rs1 has no IPv6 addresses, so the interfaces made for it get no IPv6 either: no DAD, MLD or
# router solicitations on the wire, and captures show only the lab's own traffic
ip netns exec dr-demo-rs1 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
# rs1 holds the VIP 10.0.0.100 on lo; arp_ignore=1 on every interface answers ARP only for
# addresses of the interface the request came in on, so rs1 never answers "who has 10.0.0.100?"
# and clients keep sending to the director instead of bypassing it
ip netns exec dr-demo-rs1 sysctl -qw net.ipv4.conf.all.arp_ignore=1
# when rs1 sends ARP requests on every interface, use that interface's own address as the sender,
# never the VIP 10.0.0.100 on lo: neighbours must not learn "VIP is at rs1's MAC"
ip netns exec dr-demo-rs1 sysctl -qw net.ipv4.conf.all.arp_announce=2
# rs2 has no IPv6 addresses, so the interfaces made for it get no IPv6 either: no DAD, MLD or
# router solicitations on the wire, and captures show only the lab's own traffic
ip netns exec dr-demo-rs2 sysctl -qw net.ipv6.conf.default.disable_ipv6=1
# rs2 holds the VIP 10.0.0.100 on lo; arp_ignore=1 on every interface answers ARP only for
# addresses of the interface the request came in on, so rs2 never answers "who has 10.0.0.100?"
# and clients keep sending to the director instead of bypassing it
ip netns exec dr-demo-rs2 sysctl -qw net.ipv4.conf.all.arp_ignore=1
# when rs2 sends ARP requests on every interface, use that interface's own address as the sender,
# never the VIP 10.0.0.100 on lo: neighbours must not learn "VIP is at rs2's MAC"
ip netns exec dr-demo-rs2 sysctl -qw net.ipv4.conf.all.arp_announce=2
# a switch is pure layer 2: no IPv6 addresses of its own on the bridge or its ports
ip netns exec dr-demo-lan sysctl -qw net.ipv6.conf.default.disable_ipv6=1

# a Linux bridge is the lab's Ethernet switch: it learns behind which port each MAC address sits
# and, like a plain switch, floods multicast (no IGMP/MLD snooping); LVS-DR needs the director and
# its real servers on one such segment, because the director only rewrites MAC addresses
ip -n dr-demo-lan link add name lan type bridge mcast_snooping 0

# a veth pair is a virtual cable: eth0 in client, the other end (client-eth0) plugged into switch
# lan
ip -n dr-demo-client link add name eth0 numtxqueues 1 numrxqueues 1 type veth peer name client-eth0 netns dr-demo-lan numtxqueues 1 numrxqueues 1
# a veth pair is a virtual cable: eth0 in director, the other end (director-eth0) plugged into
# switch lan
ip -n dr-demo-director link add name eth0 numtxqueues 1 numrxqueues 1 type veth peer name director-eth0 netns dr-demo-lan numtxqueues 1 numrxqueues 1
# a veth pair is a virtual cable: eth0 in rs1, the other end (rs1-eth0) plugged into switch lan
ip -n dr-demo-rs1 link add name eth0 numtxqueues 1 numrxqueues 1 type veth peer name rs1-eth0 netns dr-demo-lan numtxqueues 1 numrxqueues 1
# a veth pair is a virtual cable: eth0 in rs2, the other end (rs2-eth0) plugged into switch lan
ip -n dr-demo-rs2 link add name eth0 numtxqueues 1 numrxqueues 1 type veth peer name rs2-eth0 netns dr-demo-lan numtxqueues 1 numrxqueues 1

ip -n dr-demo-lan link set dev client-eth0 master lan
ip -n dr-demo-lan link set dev director-eth0 master lan
ip -n dr-demo-lan link set dev rs1-eth0 master lan
ip -n dr-demo-lan link set dev rs2-eth0 master lan

# rs1 holds the VIP 10.0.0.100 on lo; arp_ignore=1 on eth0 answers ARP only for addresses of the
# interface the request came in on, so rs1 never answers "who has 10.0.0.100?" and clients keep
# sending to the director instead of bypassing it
ip netns exec dr-demo-rs1 sysctl -qw net.ipv4.conf.eth0.arp_ignore=1
# when rs1 sends ARP requests on eth0, use that interface's own address as the sender, never the
# VIP 10.0.0.100 on lo: neighbours must not learn "VIP is at rs1's MAC"
ip netns exec dr-demo-rs1 sysctl -qw net.ipv4.conf.eth0.arp_announce=2
# rs2 holds the VIP 10.0.0.100 on lo; arp_ignore=1 on eth0 answers ARP only for addresses of the
# interface the request came in on, so rs2 never answers "who has 10.0.0.100?" and clients keep
# sending to the director instead of bypassing it
ip netns exec dr-demo-rs2 sysctl -qw net.ipv4.conf.eth0.arp_ignore=1
# when rs2 sends ARP requests on eth0, use that interface's own address as the sender, never the
# VIP 10.0.0.100 on lo: neighbours must not learn "VIP is at rs2's MAC"
ip netns exec dr-demo-rs2 sysctl -qw net.ipv4.conf.eth0.arp_announce=2

ip -n dr-demo-lan link set dev client-eth0 up
ip -n dr-demo-lan link set dev director-eth0 up
ip -n dr-demo-lan link set dev rs1-eth0 up
ip -n dr-demo-lan link set dev rs2-eth0 up
# switch lan comes up once its ports are: it takes them into forwarding all at once
ip -n dr-demo-lan link set dev lan up
# a new namespace starts with lo down; local traffic needs it up
ip -n dr-demo-client link set dev lo up
ip -n dr-demo-client link set dev eth0 up
# a new namespace starts with lo down; local traffic needs it up
ip -n dr-demo-director link set dev lo up
ip -n dr-demo-director link set dev eth0 up
# a new namespace starts with lo down; 127.0.0.1 and the addresses put on lo here work only once
# it is up
ip -n dr-demo-rs1 link set dev lo up
ip -n dr-demo-rs1 link set dev eth0 up
# a new namespace starts with lo down; 127.0.0.1 and the addresses put on lo here work only once
# it is up
ip -n dr-demo-rs2 link set dev lo up
ip -n dr-demo-rs2 link set dev eth0 up

# mask 255.255.255.0 AND address 10.0.0.10 = network number 10.0.0.0: the kernel adds the route
# 10.0.0.0/24 dev eth0 (gateway 0.0.0.0 in `route -n`), so every address of that network is
# on-link and reached by ARP on eth0; any other destination needs a route via a next hop (a
# gateway)
ip -n dr-demo-client addr add 10.0.0.10/24 dev eth0
# mask 255.255.255.0 AND address 10.0.0.2 = network number 10.0.0.0: the kernel adds the route
# 10.0.0.0/24 dev eth0 (gateway 0.0.0.0 in `route -n`), so every address of that network is
# on-link and reached by ARP on eth0; any other destination needs a route via a next hop (a
# gateway)
ip -n dr-demo-director addr add 10.0.0.2/24 dev eth0
# the VIP of 10.0.0.100:80: IPVS takes packets in LOCAL_IN, so the VIP must be a local address of
# the director; clients ARP for it and the director answers
ip -n dr-demo-director addr add 10.0.0.100/32 dev eth0
# mask 255.255.255.0 AND address 10.0.0.11 = network number 10.0.0.0: the kernel adds the route
# 10.0.0.0/24 dev eth0 (gateway 0.0.0.0 in `route -n`), so every address of that network is
# on-link and reached by ARP on eth0; any other destination needs a route via a next hop (a
# gateway)
ip -n dr-demo-rs1 addr add 10.0.0.11/24 dev eth0
# the VIP on lo, as /32: rs1 must own 10.0.0.100 to accept what the director sends it (with DR
# only the MAC was rewritten, the IP destination is still the VIP) and answers from it; /32 adds
# no network route, and arp_ignore/arp_announce keep it out of ARP so only the director answers
# for it
ip -n dr-demo-rs1 addr add 10.0.0.100/32 dev lo
# mask 255.255.255.0 AND address 10.0.0.12 = network number 10.0.0.0: the kernel adds the route
# 10.0.0.0/24 dev eth0 (gateway 0.0.0.0 in `route -n`), so every address of that network is
# on-link and reached by ARP on eth0; any other destination needs a route via a next hop (a
# gateway)
ip -n dr-demo-rs2 addr add 10.0.0.12/24 dev eth0
# the VIP on lo, as /32: rs2 must own 10.0.0.100 to accept what the director sends it (with DR
# only the MAC was rewritten, the IP destination is still the VIP) and answers from it; /32 adds
# no network route, and arp_ignore/arp_announce keep it out of ARP so only the director answers
# for it
ip -n dr-demo-rs2 addr add 10.0.0.100/32 dev lo

# IPVS virtual service 10.0.0.100:80: the director catches packets for it in LOCAL_IN and hands
# each new connection to one real server; scheduler rr (round robin: each new connection goes to
# the next real server in turn)
ip netns exec dr-demo-director ipvsadm -A -t 10.0.0.100:80 -s rr

# real server rs1 (10.0.0.11) by DR (-g, gatewaying): the director keeps the IP addresses and
# ports (CIP -> VIP) and rewrites the destination MAC to the real server's; only the TTL drops by
# one, as at any forwarding hop. Both must share an L2 segment; the reply goes straight to the
# client
ip netns exec dr-demo-director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1
# real server rs2 (10.0.0.12) by DR (-g, gatewaying): the director keeps the IP addresses and
# ports (CIP -> VIP) and rewrites the destination MAC to the real server's; only the TTL drops by
# one, as at any forwarding hop. Both must share an L2 segment; the reply goes straight to the
# client
ip netns exec dr-demo-director ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 1

# HTTP server on port 80 answering every GET with "rs1", so the client sees which real server
# served it
(umask 077 && mkdir -p /run/labctl-script/dr-demo/rs1) && { ip netns exec dr-demo-rs1 labagent http --port 80 --name rs1 </dev/null >/run/labctl-script/dr-demo/rs1/web.log 2>&1 & echo $! >/run/labctl-script/dr-demo/rs1/web.pid; }
# HTTP server on port 80 answering every GET with "rs2", so the client sees which real server
# served it
(umask 077 && mkdir -p /run/labctl-script/dr-demo/rs2) && { ip netns exec dr-demo-rs2 labagent http --port 80 --name rs2 </dev/null >/run/labctl-script/dr-demo/rs2/web.log 2>&1 & echo $! >/run/labctl-script/dr-demo/rs2/web.pid; }
