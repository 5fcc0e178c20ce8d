"""Do two results files of the same clip agree? (x86_64 and arm64: OpenCV's and XNNPACK's
code paths differ by platform.) Faces are paired by their boxes; prints the differences
in boxes and probabilities and the agreement of raw and shown labels, and exits 1 when
the shown labels agree on fewer than 95 % of the faces both found."""

import json
import sys


def faces(path):
    return [json.loads(line)["faces"] for line in open(path, encoding="utf-8")]


def iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def main(a_path, b_path, need=0.95):
    a, b = faces(a_path), faces(b_path)
    if len(a) != len(b):
        print(f"agree: {len(a)} frames against {len(b)}", file=sys.stderr)
        return 1
    pairs, only = [], 0
    for fa, fb in zip(a, b, strict=True):
        used = set()
        for x in fa:
            best = max(((iou(x["box"], y["box"]), j) for j, y in enumerate(fb) if j not in used),
                       default=(0, None))
            if best[0] >= 0.5:
                used.add(best[1])
                pairs.append((x, fb[best[1]]))
            else:
                only += 1
        only += len(fb) - len(used)
    if not pairs:
        print("agree: no face found on both", file=sys.stderr)
        return 1
    box = max(max(abs(p - q) for p, q in zip(x["box"], y["box"], strict=True)) for x, y in pairs)
    prob = max(max(abs(x["probs"][k] - y["probs"][k]) for k in x["probs"]) for x, y in pairs)
    raw = sum(x["label"] == y["label"] for x, y in pairs) / len(pairs)
    shown = sum(x.get("shown", x["label"]) == y.get("shown", y["label"]) for x, y in pairs) / len(pairs)
    print(json.dumps({"frames": len(a), "faces_paired": len(pairs), "faces_on_one_only": only,
                      "box_max_diff_px": box, "prob_max_diff": round(prob, 4),
                      "raw_label_agreement": round(raw, 4),
                      "shown_label_agreement": round(shown, 4)}))
    return 0 if shown >= need else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
