module reprove.invalid/fuzz/seeds

go 1.21
