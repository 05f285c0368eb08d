"""`siamkit serve`: the similarity service (API, docs and web page) on uvicorn."""

from .options import add_invert_option, add_threshold_options, check_threshold_options


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "serve",
        help="serve embed, compare and search over HTTP, with a web page",
        description="Serve the run's model on uvicorn: the API under /v1 (embed, compare and, with --index, "
        "search and index writes), its documentation at /docs, health and Prometheus metrics, and a web page at /. "
        "Needs the `serve` extra (pip install \"siamkit[serve]\"). The API key is read from --api-key-file or "
        "the SIAMKIT_SERVE_API_KEY environment variable, never from the command line.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    parser.add_argument("--index", metavar="INDEX", help="an index built with this run (from `siamkit index build`): "
                        "a folder, or a Qdrant collection (qdrant://HOST:PORT, which several replicas can share); "
                        "search, and items added or removed through the API are saved into it")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, local only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, each with its own model (default: 1)")
    parser.add_argument("--api-key-file", metavar="FILE", help="file whose first line is the API key that index "
                        "writes (and, with --protect-reads, every API call) need")
    parser.add_argument("--protect-reads", action="store_true", help="require the API key for reads too")
    parser.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="allow browser calls from this origin (repeatable; default: none)")
    parser.add_argument("--max-batch", type=int, default=32, help="most inputs per model call (default: 32; 1: no "
                        "batching)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for others to "
                        "share its model call (default: 5)")
    parser.add_argument("--queue-size", type=int, default=256, help="requests waiting for the model before the "
                        "service answers 503 (default: 256)")
    parser.add_argument("--max-files", type=int, default=64, help="files per request (default: 64)")
    parser.add_argument("--max-pixels", type=int, default=25_000_000, help="pixels per decoded image (default: 25M)")
    parser.add_argument("--max-k", type=int, default=100, help="results per search query (default: 100)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request waits for the model "
                        "(default: 30)")
    add_threshold_options(parser, "decision")
    add_invert_option(parser, "the images sent")
    parser.add_argument("--max-mb", type=float, default=32, help="largest request body in MiB (default: 32)")
    parser.set_defaults(func=run)


def run(args):
    import json
    import os

    from ..errors import ConfigError
    from ..index.qdrant import is_qdrant

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    if not args.max_mb > 0:
        raise ConfigError(f"--max-mb must be positive, got {args.max_mb}")
    check_threshold_options(args)
    if args.workers < 1:
        raise ConfigError(f"--workers must be positive, got {args.workers}")
    try:
        import uvicorn

        from ..service.app import Settings, app_from_env
    except ImportError as err:
        raise ConfigError(f"siamkit serve needs the serve extra ({err}): pip install \"siamkit[serve]\"") from None
    # Every worker builds the app from these (uvicorn starts workers by import string).
    settings = {
        "run_dir": os.path.abspath(args.run_dir), "index_dir": args.index and (args.index if is_qdrant(args.index) else os.path.abspath(args.index)),
        "threshold": args.threshold, "method": args.method, "invert": args.invert,
        "api_key_file": args.api_key_file and os.path.abspath(args.api_key_file),
        "protect_reads": args.protect_reads, "cors_origins": json.dumps(args.cors_origin),
        "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "queue_size": args.queue_size,
        "max_upload_mb": args.max_mb, "max_files": args.max_files, "max_pixels": args.max_pixels,
        "max_k": args.max_k, "timeout_s": args.timeout,
    }
    for name, value in settings.items():
        if value is not None:
            os.environ[f"SIAMKIT_SERVE_{name.upper()}"] = str(value)
    try:
        Settings().key()  # a bad key file or option fails here, once, not in every worker
    except ValueError as err:  # pydantic's ValidationError
        raise ConfigError(str(err)) from None
    print(f"siamkit serve: {args.run_dir}; the page at /, the API's documentation at /docs", flush=True)
    if args.workers == 1:  # the app is built here, so errors in the run or index surface before the port opens
        uvicorn.run(app_from_env(), host=args.host, port=args.port, log_level="info")
    else:
        # Each worker imports Keras and loads the model before it answers the supervisor's first ping.
        uvicorn.run("siamkit.service.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level="info", timeout_worker_healthcheck=120)
    return 0
