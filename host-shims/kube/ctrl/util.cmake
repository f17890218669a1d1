# mgo_kube_util: the work queue (workqueue.h), the Prometheus registry (metrics.h) and the
# probe/metrics HTTP server (httpd.h) of mgo-kube. Plain C and POSIX threads, no jansson.
add_library(mgo_kube_util STATIC
            ${CMAKE_CURRENT_SOURCE_DIR}/workqueue.c
            ${CMAKE_CURRENT_SOURCE_DIR}/metrics.c
            ${CMAKE_CURRENT_SOURCE_DIR}/httpd.c)
target_compile_options(mgo_kube_util PRIVATE ${MGO_WARNINGS})
target_compile_definitions(mgo_kube_util PRIVATE _POSIX_C_SOURCE=200809L)
target_include_directories(mgo_kube_util PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(mgo_kube_util PUBLIC Threads::Threads)
