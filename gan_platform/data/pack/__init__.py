"""`gan-dataset` (python -m gan_platform.data.pack): any image source into one packed zip.

sources.py and databases.py read the source formats, transform.py fits each image, convert.py runs
the work (in worker processes), writer.py writes the zip atomically and sums it up; __main__.py is
the command line. The zip's layout and how it is read back: data/packed/archive.py.
"""
