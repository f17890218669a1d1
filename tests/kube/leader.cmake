# Lease leader election (host-shims/kube/ctrl/leader.h) against the real kube-apiserver: two
# electors, release, takeover after expiry, a foreign holder, renewTime ignored, bad
# configurations, leader_stop bounded (a silent server; a proxy that stops forwarding).
add_executable(kube_leader_apiserver test_kube_leader.c)
target_compile_options(kube_leader_apiserver PRIVATE ${MGO_WARNINGS})
target_compile_definitions(kube_leader_apiserver PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(kube_leader_apiserver PRIVATE mgo_kube_leader Threads::Threads)
add_test(NAME kube_leader COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/run_with_apiserver.sh
                                  $<TARGET_FILE:kube_leader_apiserver>)
set_tests_properties(kube_leader PROPERTIES
                     TIMEOUT 300 RESOURCE_LOCK real_servers FIXTURES_REQUIRED kube_apiserver
                     LABELS kube)
