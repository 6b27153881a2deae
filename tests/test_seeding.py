import torch

from clinkd.seeding import accelerator_devices, local_seed


def test_local_seed_draws_what_manual_seed_draws_and_restores_the_state():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(11)
    torch.rand(2)
    before = torch.get_rng_state()
    with local_seed(5):
        inside = torch.rand(3)
    assert torch.equal(inside, expected)
    assert torch.equal(torch.get_rng_state(), before)


def test_local_seed_restores_the_state_when_the_block_fails():
    before = torch.get_rng_state()
    try:
        with local_seed(3):
            torch.rand(10)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.equal(torch.get_rng_state(), before)


def test_accelerator_devices_on_this_machine():
    accelerator = getattr(torch, "accelerator", None)
    available = accelerator.is_available() if accelerator is not None else torch.cuda.is_available()
    assert (accelerator_devices() != []) == available
