module example.com/gofib

go 1.19
