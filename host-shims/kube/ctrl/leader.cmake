# mgo_kube_leader: Lease-based leader election on the kc client (leader.h).
add_library(mgo_kube_leader STATIC ${CMAKE_CURRENT_SOURCE_DIR}/leader.c)
target_compile_options(mgo_kube_leader PRIVATE ${MGO_WARNINGS})
target_compile_definitions(mgo_kube_leader PRIVATE _POSIX_C_SOURCE=200809L)
target_include_directories(mgo_kube_leader PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(mgo_kube_leader PUBLIC mgo_kube_client Threads::Threads)
