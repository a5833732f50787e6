"""A run's files: evidence.json, junit.xml, report.html, and a .tar.gz of its directory built
on the fly. Every path is resolved and must lie inside the data directory's runs folder; a
run id or stored path that would lead elsewhere answers 404."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Literal

import anyio
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, Response

from harness.service.api import RunId
from harness.service.auth import Principal
from harness.service.service import Service

MEDIA = {
    "evidence.json": "application/json",
    "junit.xml": "application/xml",
    "report.html": "text/html; charset=utf-8",
}


def confined(root: Path, path: Path) -> Path | None:
    """`path` resolved, if it is inside `root` (symlinks followed); else None."""
    resolved = path.resolve()
    return resolved if resolved.is_relative_to(root.resolve()) else None


def _bundle(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.is_symlink():
                tar.add(path, arcname=f"{directory.name}/{path.relative_to(directory)}")
    return buffer.getvalue()


def build(service: Service) -> APIRouter:
    router = APIRouter(prefix="/api")
    reader = Depends(service.auth.reader)
    root = service.settings.runs_dir()

    def run_dir(run_id: str) -> Path:
        """The run's directory (blocking: call it in a worker thread)."""
        row = service.store.run(run_id)
        directory = confined(root, Path(row["out_dir"])) if row else None
        if directory is None or not directory.is_dir():
            raise HTTPException(404, f"no files for run {run_id!r}")
        return directory

    @router.get("/runs/{run_id}/{name}", tags=["downloads"])
    async def download(
        run_id: RunId,
        name: Literal["evidence.json", "junit.xml", "report.html", "bundle.tar.gz"],
        who: Principal = reader,
    ) -> Response:
        """One file of the run, or the whole run directory as `<run_id>.tar.gz`."""
        directory = await anyio.to_thread.run_sync(run_dir, run_id)
        if name == "bundle.tar.gz":
            data = await anyio.to_thread.run_sync(_bundle, directory)
            headers = {"Content-Disposition": f'attachment; filename="{run_id}.tar.gz"'}
            return Response(data, media_type="application/gzip", headers=headers)
        path = confined(directory, directory / name)
        if path is None or not path.is_file():
            raise HTTPException(404, f"run {run_id} has no {name} (yet)")
        return FileResponse(path, media_type=MEDIA[name])

    return router
