module largebinary

go 1.21
