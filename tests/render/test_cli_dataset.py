"""``ecgscan render`` (pages and dataset), the PTB-XL generator and the on-the-fly dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgscan.cli import main
from ecgscan.data import read_record
from ecgscan.render._generate import page_seed, parse_folds, plan_pages, render_dataset


def test_cli_renders_records_with_several_pages(
    ptbxl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = ptbxl_dir / "records100" / "00000" / "00001_lr"
    out = tmp_path / "pages"
    args = ["render", str(rec), "-o", str(out), "--dpi", "100", "--pages", "2", "--seed", "4"]
    assert main([*args, "--layout", "6x2", "--style", "scan"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"00001_lr-{k}{s}" for k in (0, 1) for s in (".png", ".json", "-mask.png", ".hea", ".dat")
    )
    truth = json.loads((out / "00001_lr-1.json").read_text())
    assert truth["layout"] == "6x2" and truth["dpi"] == 100.0
    ref = read_record(out / "00001_lr-0")
    assert ref.n_samples == 1000 and np.isnan(ref.signal).any()
    first = (out / "00001_lr-0.png").read_bytes()
    assert first != (out / "00001_lr-1.png").read_bytes()  # the pages differ
    assert main([*args, "--layout", "6x2", "--style", "scan"]) == 0  # same seed, same bytes
    assert (out / "00001_lr-0.png").read_bytes() == first


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layout", "3x5"], "3x5"),
        (["--dpi", "20"], "dpi"),
        (["--style", "watercolour"], "style"),
    ],
)
def test_cli_bad_options_are_one_line(
    ptbxl_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    rec = ptbxl_dir / "records100" / "00000" / "00001_lr"
    assert main(["render", str(rec), "-o", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_cli_missing_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err


def test_dataset_is_deterministic_and_resumable(ptbxl_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    kwargs = {"folds": [9], "n": 3, "fs": 100, "dpi": 100, "seed": 5}
    first = render_dataset(ptbxl_dir, out, **kwargs)  # type: ignore[arg-type]
    assert first == {"rendered": 3, "skipped": 0, "total": 3}
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "stem,ecg_id,fold,layout,dpi,style,seed" and len(manifest) == 4
    stems = [line.split(",")[0] for line in manifest[1:]]
    assert all((out / f"{s}.json").is_file() for s in stems)
    assert all(line.split(",")[2] == "9" for line in manifest[1:])
    victim = out / f"{stems[1]}.json"
    before = (out / f"{stems[1]}-mask.png").read_bytes()
    victim.unlink()
    again = render_dataset(ptbxl_dir, out, **kwargs)  # type: ignore[arg-type]
    assert again == {"rendered": 1, "skipped": 2, "total": 3}
    assert (out / f"{stems[1]}-mask.png").read_bytes() == before
    # two worker processes write the very same files
    par = tmp_path / "par"
    assert render_dataset(ptbxl_dir, par, workers=2, **kwargs)["rendered"] == 3  # type: ignore[arg-type]
    for stem in stems:
        for suffix in (".json", "-mask.png", ".dat"):
            assert (par / f"{stem}{suffix}").read_bytes() == (out / f"{stem}{suffix}").read_bytes()


def test_cli_dataset(ptbxl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    args = ["render", "dataset", "--ptbxl", str(ptbxl_dir), "--folds", "9", "-n", "2"]
    assert main([*args, "-o", str(out), "--fs", "100", "--dpi", "100", "--workers", "1"]) == 0
    assert "2 page(s) rendered" in capsys.readouterr().out
    assert len(list(out.glob("*.json"))) == 2


def test_plan_cycles_records_and_parse_folds() -> None:
    plan = plan_pages([1, 2], 5, seed=0)
    assert [p["k"] for p in plan] == [0, 0, 1, 1, 2]
    assert sorted({p["ecg_id"] for p in plan}) == [1, 2]
    assert plan == plan_pages([1, 2], 5, seed=0)
    assert parse_folds("1-3,9") == [1, 2, 3, 9]
    assert page_seed(0, "a", 1) == page_seed(0, "a", 1) != page_seed(0, "a", 2)
    from ecgscan.errors import EcgscanError

    with pytest.raises(EcgscanError, match="folds"):
        parse_folds("one")


def test_render_dataset_torch(ptbxl_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    from ecgscan.render import RenderDataset

    ds = RenderDataset(ptbxl_dir, folds=[9], fs=100, length=4, size=(256, 352), seed=1, dpi=100)
    assert len(ds) == 4
    image, mask, truth = ds[2]
    assert image.shape == (3, 256, 352) and image.dtype == torch.float32
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert mask.shape == (256, 352) and mask.dtype == torch.int64 and int(mask.max()) > 0
    again = ds[2]
    assert torch.equal(image, again[0]) and torch.equal(mask, again[1])
    # the ground truth follows the letterbox
    pts = np.concatenate([np.asarray(lead["pixels"], float) for lead in truth["leads"]])
    pts = pts[np.isfinite(pts).all(axis=1)]
    xi, yi = np.rint(pts[:, 0]).astype(int), np.rint(pts[:, 1]).astype(int)
    ok = (xi >= 0) & (xi < 352) & (yi >= 0) & (yi < 256)
    assert ok.mean() > 0.9
    assert (mask.numpy()[yi[ok], xi[ok]] > 0).all()
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=RenderDataset.collate)
    images, masks, truths = next(iter(loader))
    assert images.shape == (2, 3, 256, 352) and masks.shape == (2, 256, 352) and len(truths) == 2
    records = [ds._record(0)]
    crop = RenderDataset(records, length=1, size=(128, 128), fit="crop", dpi=100, style="clean")
    img, msk, _ = crop.render(0)
    assert img.shape == (128, 128, 3) and msk.shape == (128, 128)


def test_render_import_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import ecgscan.render, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_set_options(
    ptbxl_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = ptbxl_dir / "records100" / "00000" / "00001_lr"
    out = tmp_path / "o"
    sets = ["--set", "paper_speed=50", "--set", "paper=a4", "--set", "margins=[5, 5, 5, 5]"]
    assert main(["render", str(rec), "-o", str(out), "--dpi", "100", *sets]) == 0
    truth = json.loads((out / "00001_lr.json").read_text())
    assert truth["paper_speed"] == 50 and truth["paper"]["name"] == "a4"
    assert truth["duration"] == 5.0 and truth["width"] == round(297 * 100 / 25.4)
    assert main(["render", str(rec), "-o", str(out), "--set", "colour=red"]) == 2
    assert "unknown render option 'colour'" in capsys.readouterr().err
