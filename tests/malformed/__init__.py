"A corpus of malformed inputs, generated in code: each case writes its bad input into a folder and says what its error must name."
from .corpus import *
