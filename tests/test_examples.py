"""The examples run and check themselves (short runs; the scripts exit 1 on a failure)."""
import importlib.util
import pathlib

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_example_learns_and_its_gradients_match_jax_nn(capsys):
    # 60 Adam steps take the loss from ln(64) = 4.2 (4.6 at step 0) to about 2.5.
    assert _load("train").main(["--steps", "60", "--target", "0.75"]) == 0
    out = capsys.readouterr().out
    assert "gradients at the initial weights" in out and out.rstrip().endswith("OK")


def test_train_example_in_16_bit_attention(capsys):
    # The GPU's default (bfloat16 attention) and float16, whose reference runs in
    # float32 on the CPU: gradients within the example's tolerances, the loss falling.
    train = _load("train")
    for dtype in ("bfloat16", "float16"):
        assert train.main(["--steps", "20", "--target", "0.95", "--attn-dtype", dtype]) == 0
        assert capsys.readouterr().out.rstrip().endswith("OK")


def test_decode_example_matches_full_attention(capsys):
    assert _load("decode").main(["--steps", "6", "--batch", "2", "--prompt-len", "9"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")
