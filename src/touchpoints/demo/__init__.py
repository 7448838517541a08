"""A simulated car maker's multichannel customers, with ground truth, for demos and benchmarks."""

from touchpoints.demo.files import DemoFiles, write_demo_files
from touchpoints.demo.simulator import DemoConfig, GroundTruth, Simulator

__all__ = ["DemoConfig", "DemoFiles", "GroundTruth", "Simulator", "write_demo_files"]
