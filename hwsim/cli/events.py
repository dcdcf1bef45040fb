"""``hwsim events convert IMAGES -o events.npz``: static images → DVS event streams."""

from __future__ import annotations

from ._common import output_file, positive_int, print_json, require


def register(sub) -> None:
    p = sub.add_parser("events", help="event-camera simulation (static images → DVS events)",
                       description="Turn static images into DVS event streams as the paper's "
                                   "event-based SL-MNIST pipeline does.")
    esub = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    c = esub.add_parser("convert", help="convert images to an event file (.npz)",
                        description="IMAGES is 'digits' (scikit-learn's bundled digits), a Sign "
                                    "Language MNIST CSV (label,pixel1,…,pixel784) or an .npy/.npz "
                                    "of (N, H, W) grey images. Writes t (µs), x, y, p, offsets, "
                                    "labels.")
    c.add_argument("images", help="'digits', a .csv, .npy or .npz")
    c.add_argument("-o", "--out", type=output_file, required=True, help="output .npz")
    c.add_argument("--limit", type=positive_int, default=None, help="first N images only")
    c.add_argument("--seed", type=int, default=0, help="random seed (per image: (seed, index))")
    c.add_argument("--size", type=positive_int, default=48, help="upsampled image side (px)")
    c.add_argument("--canvas", type=positive_int, default=None,
                   help="sensor side (px), ≥ size; larger places the image at random")
    c.add_argument("--keep-negative", action="store_true", help="keep OFF events too")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(func=run_convert)


def run_convert(args) -> int:
    import numpy as np

    from models.snn.events import DvsConfig, convert_images, load_images

    require(args.out.suffix == ".npz", f"output must be an .npz file, not {args.out}")
    cfg = DvsConfig(size=args.size, canvas=args.canvas or args.size,
                    keep_negative=args.keep_negative)
    images, labels = load_images(args.images)
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    es = convert_images(images, labels, cfg, seed=args.seed)
    es.save(args.out)
    per = np.diff(es.offsets)
    summary = {"out": str(args.out), "images": len(es), "events": int(es.t.size),
               "events_per_image_mean": float(per.mean()), "events_per_image_min": int(per.min()),
               "events_per_image_max": int(per.max()), "sensor": [es.height, es.width],
               "window_us": es.window_us, "dvs": cfg.to_dict()}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {args.out}: {len(es)} images, {es.t.size} events "
              f"({per.mean():.0f} per image, {per.min()} … {per.max()}), "
              f"{es.width}×{es.height} px, {es.window_us / 1000:g} ms")
    return 0
