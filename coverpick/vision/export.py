"""Export a backbone to ONNX: ``python -m coverpick.vision.export BACKBONE_ID TARGET.onnx``."""

import sys
from pathlib import Path

from coverpick.vision.backbones import export_onnx


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m coverpick.vision.export BACKBONE_ID TARGET.onnx", file=sys.stderr)
        return 2
    export_onnx(argv[0], Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
