"""`mawaeed`: run the suite (embedded or one service per process) and the gateway of the distributed mode."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")  # nameko 2 is built on eventlet

import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything else imports socket, threading or time

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from shared.config import nameko_config  # noqa: E402

SERVICES = {
    "availability": "services.availability.service:AvailabilityService",
    "booking": "services.booking.service:BookingService",
}


def service_classes(names):
    import importlib
    classes = []
    for name in names:
        module, cls = SERVICES[name].split(":")
        classes.append(getattr(importlib.import_module(module), cls))
    return classes


def run(args) -> int:
    from nameko.runners import ServiceRunner
    names = args.services or list(SERVICES)
    config = nameko_config()
    runner = ServiceRunner(config)
    for cls in service_classes(names):
        runner.add_service(cls)
    mode = "embedded" if config["AMQP_URI"].startswith("memory") else "distributed"
    logging.getLogger("mawaeed").info("starting %s (%s) on %s", ", ".join(names), mode, config["WEB_SERVER_ADDRESS"])
    stopping = eventlet.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.ready() or stopping.send())
    runner.start()
    print(f"Mawaeed is up ({mode}): http://{config['WEB_SERVER_ADDRESS'].replace('0.0.0.0', 'localhost')}"
          f"/api/v1/directorates", flush=True)
    stopping.wait()
    runner.stop()
    return 0


def gateway(args) -> int:
    from services.gateway import serve
    serve(args.listen, {name: os.environ.get(f"{name.upper()}_URL", default)
                        for name, default in (("availability", "http://127.0.0.1:8001"),
                                              ("booking", "http://127.0.0.1:8002"))})
    return 0


def main(argv=None) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="mawaeed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run services (all of them by default) in this process")
    p_run.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of: {', '.join(SERVICES)}")
    p_run.set_defaults(func=run)
    p_gw = sub.add_parser("gateway", help="serve the public API at one base URL in front of separate services")
    p_gw.add_argument("--listen", default=os.environ.get("GATEWAY_ADDRESS", "0.0.0.0:8000"))
    p_gw.set_defaults(func=gateway)
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "services", None) or []) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service {', '.join(sorted(unknown))}; choose from {', '.join(SERVICES)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
