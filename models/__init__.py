"""What Leadcast learns and predicts.

Models, calibration, reasons, BANT rules, baselines, metrics, bundles and the registry.
"""
