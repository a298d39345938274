"""Wrap one gzip layer blob in a single-layer OCI image layout.

Usage: make-layout.py LAYER.tar.gz OUTDIR TAG

The config's diff_id is computed by inflating the blob once; the layout is
what `skopeo copy oci:OUTDIR:TAG ...` pushes.
"""
import gzip
import hashlib
import json
import os
import shutil
import sys


def sha256_file(path, opener=open):
    h = hashlib.sha256()
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def put_blob(out, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs/sha256", digest[7:]), "wb") as f:
        f.write(data)
    return digest


def main():
    layer, out, tag = sys.argv[1:4]
    os.makedirs(os.path.join(out, "blobs/sha256"), exist_ok=True)
    blob = sha256_file(layer)
    shutil.copyfile(layer, os.path.join(out, "blobs/sha256", blob[7:]))
    diff_id = sha256_file(layer, gzip.open)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    config_digest = put_blob(out, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": blob, "size": os.path.getsize(layer)}],
    }).encode()
    manifest_digest = put_blob(out, manifest)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)


if __name__ == "__main__":
    main()
