#!/usr/bin/python3
"""fxcam from Python: Grad-CAM and Grad-CAM++ figures for radiographs.

    gradcam_example.py [--model MODEL.pt] [--layer NAME] OUT_DIR IMAGE.png [IMAGE.png ...]

Without --model, the default fracture model is used (fxcam.default_model_path()).
The fxcam package finds libfxcam by itself once installed; otherwise set
PYTHONPATH to fxcam's python/ folder and FXCAM_LIBRARY to libfxcam.so.
"""
import argparse
import os
import sys

import fxcam


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="TorchScript model (default: the fracture model)")
    parser.add_argument("--layer", help="target layer (default: the model's)")
    parser.add_argument("out_dir")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()

    print(f"fxcam {fxcam.library_version()} from {fxcam.library_path}")
    try:
        model = fxcam.Model(args.model, device="auto")
    except (fxcam.FxError, FileNotFoundError) as e:
        sys.exit(f"gradcam_example: {e}")
    print(model)
    print("target layers:", ", ".join(l.name for l in fxcam.list_layers(model, feature_maps_only=True)[-3:]))

    os.makedirs(args.out_dir, exist_ok=True)
    for cls in (fxcam.GradCAM, fxcam.GradCAMPlusPlus):
        cam = cls(model, layer_name=args.layer)
        for path in args.images:
            image = fxcam.load_image(path)  # uint8 or uint16, as stored
            heatmap, overlay = cam.generate_visualization(image)
            stem = os.path.splitext(os.path.basename(path))[0]
            fxcam.save_image(os.path.join(args.out_dir, f"{stem}_{cam.method}_overlay.png"), overlay)
            figure = os.path.join(args.out_dir, f"{stem}_{cam.method}.png")
            cam.visualize(image, save_path=figure)
            r = cam.last_result
            print(f"{path}: {cam.method_title}: {r.predicted_name()} ({r.confidence():.1%}), "
                  f"layer {r.layer} -> {figure}")


if __name__ == "__main__":
    main()
