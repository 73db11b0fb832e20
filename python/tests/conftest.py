# On lavapipe (Mesa's CPU Vulkan driver), importing torchvision after the driver has loaded its
# LLVM crashes the process (seen with torch 2.x and Mesa 22.3); where the reference is installed
# for the parity test, it is imported before the first gradcam.Engine().
try:
    import torch  # noqa: F401
    import torchvision  # noqa: F401
except ImportError:
    pass
