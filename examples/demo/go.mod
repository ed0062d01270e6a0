module demo

go 1.21
