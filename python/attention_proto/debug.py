"""Switches for testing: poisoned outputs catch elements a kernel never wrote."""

poison_outputs = False

# flash_attention takes the Hopper wgmma kernel where ops/flash.py's dispatch
# table says it is faster; False keeps every call on the mma.sync kernel (tests
# compare the two).
dispatch_hopper = True
