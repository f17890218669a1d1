module mgo.example/host

go 1.19
