module hunt

go 1.21
