module probecost

go 1.21
