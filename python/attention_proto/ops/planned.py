"""What every prepared op (flash, simple, paged, linear, rope) shares once it
holds a LaunchPlan: launching it on its stream with its buffers' addresses, and
the plan's argument block with those addresses filled in (for timing a kernel
alone with Pipeline.benchmark)."""

from __future__ import annotations


class PlannedLaunch:
    """Mixin. The op sets `plan` (a LaunchPlan), `slots` (byte offsets of its
    pointer arguments), `addresses` (one per slot), `owned` (buffers it
    allocated) and `stream`."""

    def launch(self) -> None:
        self.plan.run(self.stream, self.addresses)
        # Their frees wait for this launch (stream-ordered, DeviceBuffer.used_on).
        for buf in self.owned:
            buf.used_on(self.stream)

    def filled_args(self) -> bytes:
        """The plan's argument block with this problem's addresses in its slots."""
        args = bytearray(self.plan.args)
        for off, addr in zip(self.slots, self.addresses, strict=True):
            args[off : off + 8] = addr.to_bytes(8, "little")
        return bytes(args)
