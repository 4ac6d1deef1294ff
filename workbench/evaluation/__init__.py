"""Batch evaluation: attacks and detectors over a labelled dataset, with the seed papers'
metrics (Finlayson et al. 2019, Table 1; Du-Harpur et al. 2020 flip rates), resumable
runs and an optional Ray engine. No Qt here; torch is imported lazily."""
