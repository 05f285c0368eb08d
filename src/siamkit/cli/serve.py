"""`siamkit serve`: a JSON HTTP service over a trained run and, optionally, an index."""

from .options import add_invert_option, add_threshold_options, check_threshold_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "serve",
        help="serve embed, compare and search over HTTP",
        description="Answer JSON requests with the run's model: GET /health, POST /embed, POST /compare and, "
        "with --index, POST /search (files sent base64-encoded with their names; see `siamkit.service`).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--index", help="an index built with this run (from `siamkit index build`), for /search")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, local only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    add_threshold_options(parser, "decision")
    add_invert_option(parser, "the images sent")
    parser.add_argument("--max-mb", type=float, default=32, help="largest request body in MiB (default: 32)")
    parser.set_defaults(func=run)


def run(args):
    import logging

    from ..errors import ConfigError
    from ..index import load
    from ..runs import Run
    from ..service import SimilarityService, make_server

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    if not args.max_mb > 0:
        raise ConfigError(f"--max-mb must be positive, got {args.max_mb}")
    check_threshold_options(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    service = SimilarityService(
        Run(args.run_dir), None if args.index is None else load(args.index), args.threshold, args.method, args.invert
    )
    server = make_server(service, args.host, args.port, int(args.max_mb * 2**20))
    host, port = server.server_address[:2]
    print(f"siamkit serve: {args.run_dir} on http://{host}:{port} (GET /health, POST /embed /compare /search)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
