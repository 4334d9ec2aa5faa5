from textsieve.workshop.chapter4 import run_chapter4
