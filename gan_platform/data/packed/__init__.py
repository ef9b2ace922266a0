"""Packed datasets: one zip of PNGs with a dataset.json of labels (stylegan2-ada's layout, made
by `gan-dataset`), and Hugging Face datasets saved to disk. Both are read through the readers of
data/readers.py, held in memory as uint8 when they fit and streamed otherwise (build.py)."""
