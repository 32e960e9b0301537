"""The built-in power meters, one module each; ``energy.meter.BUILTIN`` names them, and each is imported
only when a device's ``[devices.<name>.meter]`` table asks for it."""
