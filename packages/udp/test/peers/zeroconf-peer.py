"""python-zeroconf on the loopback interface, for the interop tests.

  zeroconf-peer.py register NAME TYPE PORT HOST   registers, prints "registered <name>", waits for stdin to close
  zeroconf-peer.py browse TYPE SECONDS            prints one JSON line per resolved instance, then exits
"""
import json
import socket
import sys
import time

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceListener, Zeroconf


def zc():
    return Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)


def register(name, type_, port, host):
    z = zc()
    info = ServiceInfo(
        f"{type_}.local.",
        f"{name}.{type_}.local.",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=int(port),
        properties={"from": "zeroconf", "v": "1"},
        server=f"{host}.local.",
    )
    z.register_service(info, allow_name_change=True)
    print(f"registered {info.name}", flush=True)
    sys.stdin.read()
    z.unregister_service(info)
    z.close()


class Listener(ServiceListener):
    def __init__(self, z):
        self.z = z
        self.seen = set()

    def add_service(self, zc_, type_, name):
        self.report(type_, name)

    def update_service(self, zc_, type_, name):
        self.report(type_, name)

    def remove_service(self, zc_, type_, name):
        pass

    def report(self, type_, name):
        info = self.z.get_service_info(type_, name, timeout=3000)
        if info is None:
            return
        out = {
            "name": name,
            "port": info.port,
            "server": info.server,
            "addresses": info.parsed_addresses(),
            "txt": {k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()},
        }
        key = json.dumps(out, sort_keys=True)
        if key in self.seen:
            return
        self.seen.add(key)
        print(json.dumps(out), flush=True)


def browse(type_, seconds):
    z = zc()
    listener = Listener(z)
    ServiceBrowser(z, f"{type_}.local.", listener)
    time.sleep(float(seconds))
    z.close()


if __name__ == "__main__":
    if sys.argv[1] == "register":
        register(*sys.argv[2:6])
    else:
        browse(*sys.argv[2:4])
