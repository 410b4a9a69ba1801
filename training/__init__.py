"""Training-only code for ColorGAN Hub: the data stream (`data`), the losses (`losses`), the two
calibrations (`calibration`: BatchNorm statistics of the generator, Platt scaling of the realness
score), saving models (`saving`), and the scripts `train.py`, `calibrate.py`, `colour_stats.py`,
`report.py`. Installed with the package (`pip install -e ".[train]"`), so scripts, benchmarks and
tests import it as `training.*` with no path edits.
"""
