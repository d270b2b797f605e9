/* SPDX-License-Identifier: MIT */
/*
 * Prints the size of every public struct the Python bindings mirror, and
 * the offset and size of each of its fields, so test_layout.py can compare
 * them with the ctypes definitions: "name size" lines, then
 * "name.field offset size" (the leading size field of versioned
 * structs included).
 */
#include <stddef.h>
#include <stdio.h>

#include <libvmapple/libvmapple.h>

#define S(t)    printf("%s %zu\n", #t, sizeof(t))
#define F(t, f) printf("%s.%s %zu %zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f))

int main(void)
{
    S(vmapple_host_ops);
    F(vmapple_host_ops, size);
    F(vmapple_host_ops, mem_read);
    F(vmapple_host_ops, mem_write);
    F(vmapple_host_ops, mem_map);
    F(vmapple_host_ops, mem_unmap);
    F(vmapple_host_ops, irq_set);
    F(vmapple_host_ops, msi_send);
    F(vmapple_host_ops, log);
    F(vmapple_host_ops, pci_bar_update);
    F(vmapple_host_ops, async_notify);

    S(vmapple_region_info);
    F(vmapple_region_info, name);
    F(vmapple_region_info, size);
    F(vmapple_region_info, base);
    F(vmapple_region_info, flags);
    F(vmapple_region_info, pci_bar);

    S(vmapple_irq_info);
    F(vmapple_irq_info, name);
    F(vmapple_irq_info, spi);
    F(vmapple_irq_info, flags);

    S(vmapple_platform_region);
    F(vmapple_platform_region, id);
    F(vmapple_platform_region, flags);
    F(vmapple_platform_region, name);
    F(vmapple_platform_region, description);
    F(vmapple_platform_region, base);
    F(vmapple_platform_region, size);
    F(vmapple_platform_region, spi);
    F(vmapple_platform_region, spi_count);

    S(vmapple_bus_range);
    F(vmapple_bus_range, size);
    F(vmapple_bus_range, region);
    F(vmapple_bus_range, base);
    F(vmapple_bus_range, length);
    F(vmapple_bus_range, name);
    F(vmapple_bus_range, device);

    S(vmapple_blockdev_file_options);
    F(vmapple_blockdev_file_options, size);
    F(vmapple_blockdev_file_options, flags);
    F(vmapple_blockdev_file_options, offset);
    F(vmapple_blockdev_file_options, length);

    S(vmapple_blockdev_ops);
    F(vmapple_blockdev_ops, size);
    F(vmapple_blockdev_ops, read);
    F(vmapple_blockdev_ops, write);
    F(vmapple_blockdev_ops, flush);
    F(vmapple_blockdev_ops, discard);
    F(vmapple_blockdev_ops, write_zeroes);
    F(vmapple_blockdev_ops, close);

    S(vmapple_blockdev_options);
    F(vmapple_blockdev_options, size);
    F(vmapple_blockdev_options, flags);
    F(vmapple_blockdev_options, capacity);

    S(vmapple_pci_host_bridge_options);
    F(vmapple_pci_host_bridge_options, size);
    F(vmapple_pci_host_bridge_options, vendor_id);
    F(vmapple_pci_host_bridge_options, device_id);
    F(vmapple_pci_host_bridge_options, class_code);
    F(vmapple_pci_host_bridge_options, subsystem_vendor_id);
    F(vmapple_pci_host_bridge_options, subsystem_id);
    F(vmapple_pci_host_bridge_options, revision);

    S(vmapple_aes_builtin_key);
    F(vmapple_aes_builtin_key, length);
    F(vmapple_aes_builtin_key, key);

    S(vmapple_aes_options);
    F(vmapple_aes_options, size);
    F(vmapple_aes_options, cbc_chain_iv);
    F(vmapple_aes_options, builtin_keys);

    S(vmapple_cfg_options);
    F(vmapple_cfg_options, size);
    F(vmapple_cfg_options, layout);
    F(vmapple_cfg_options, ecid);
    F(vmapple_cfg_options, ram_size);
    F(vmapple_cfg_options, nr_cpus);
    F(vmapple_cfg_options, rnd);
    F(vmapple_cfg_options, mac_en0);
    F(vmapple_cfg_options, mac_en1);
    F(vmapple_cfg_options, mac_wifi0);
    F(vmapple_cfg_options, mac_bt0);
    F(vmapple_cfg_options, serial);
    F(vmapple_cfg_options, model);
    F(vmapple_cfg_options, soc_name);
    F(vmapple_cfg_options, run_installer);
    F(vmapple_cfg_options, reserved0);

    S(vmapple_bdif_options);
    F(vmapple_bdif_options, size);
    F(vmapple_bdif_options, flags);
    F(vmapple_bdif_options, root);
    F(vmapple_bdif_options, aux);

    S(vmapple_pvpanic_options);
    F(vmapple_pvpanic_options, size);
    F(vmapple_pvpanic_options, events);
    F(vmapple_pvpanic_options, event);

    S(vmapple_pvpanic_counts);
    F(vmapple_pvpanic_counts, size);
    F(vmapple_pvpanic_counts, supported);
    F(vmapple_pvpanic_counts, panicked);
    F(vmapple_pvpanic_counts, crash_loaded);
    F(vmapple_pvpanic_counts, shutdown);
    F(vmapple_pvpanic_counts, unsupported_writes);

    S(vmapple_xhci_policy_options);
    F(vmapple_xhci_policy_options, size);
    F(vmapple_xhci_policy_options, numintrs);
    F(vmapple_xhci_policy_options, mapping);
    F(vmapple_xhci_policy_options, reserved0);

    S(vmapple_xhci_irq_state);
    F(vmapple_xhci_irq_state, size);
    F(vmapple_xhci_irq_state, flags);
    F(vmapple_xhci_irq_state, msi_vectors);
    F(vmapple_xhci_irq_state, msix_vectors);

    S(vmapple_xhci_route_request);
    F(vmapple_xhci_route_request, size);
    F(vmapple_xhci_route_request, interrupter);

    S(vmapple_xhci_route);
    F(vmapple_xhci_route, size);
    F(vmapple_xhci_route, flags);
    F(vmapple_xhci_route, event_ring);
    F(vmapple_xhci_route, irq_mode);
    F(vmapple_xhci_route, vector);
    F(vmapple_xhci_route, reserved0);

    S(vmapple_virtio_blk_options);
    F(vmapple_virtio_blk_options, size);
    F(vmapple_virtio_blk_options, variant);
    F(vmapple_virtio_blk_options, blockdev);
    F(vmapple_virtio_blk_options, flags);
    F(vmapple_virtio_blk_options, io_mode);
    F(vmapple_virtio_blk_options, io_threads);
    F(vmapple_virtio_blk_options, io_engine);
    F(vmapple_virtio_blk_options, barrier_mode);
    F(vmapple_virtio_blk_options, msix_vectors);
    F(vmapple_virtio_blk_options, queue_size);
    F(vmapple_virtio_blk_options, seg_max);
    F(vmapple_virtio_blk_options, size_max);
    F(vmapple_virtio_blk_options, blk_size);
    F(vmapple_virtio_blk_options, class_code);
    F(vmapple_virtio_blk_options, subsystem_vendor_id);
    F(vmapple_virtio_blk_options, subsystem_id);
    F(vmapple_virtio_blk_options, serial);
    F(vmapple_virtio_blk_options, max_bounce_bytes);
    F(vmapple_virtio_blk_options, worker_poll_us);
    F(vmapple_virtio_blk_options, complete_in_notify);

    S(vmapple_virtio_blk_stats);
    F(vmapple_virtio_blk_stats, size);
    F(vmapple_virtio_blk_stats, in_flight);
    F(vmapple_virtio_blk_stats, requests);
    F(vmapple_virtio_blk_stats, read_bytes);
    F(vmapple_virtio_blk_stats, write_bytes);
    F(vmapple_virtio_blk_stats, flushes);
    F(vmapple_virtio_blk_stats, barriers);
    F(vmapple_virtio_blk_stats, io_errors);
    F(vmapple_virtio_blk_stats, unsupported);
    F(vmapple_virtio_blk_stats, bounce_bytes);
    F(vmapple_virtio_blk_stats, bounce_peak);
    F(vmapple_virtio_blk_stats, bounced);
    F(vmapple_virtio_blk_stats, worker_polled);
    F(vmapple_virtio_blk_stats, inline_requests);

    S(vmapple_vhost_user_blk_options);
    F(vmapple_vhost_user_blk_options, size);
    F(vmapple_vhost_user_blk_options, variant);
    F(vmapple_vhost_user_blk_options, blockdev);
    F(vmapple_vhost_user_blk_options, flags);
    F(vmapple_vhost_user_blk_options, barrier_mode);
    F(vmapple_vhost_user_blk_options, num_queues);
    F(vmapple_vhost_user_blk_options, max_queue_size);
    F(vmapple_vhost_user_blk_options, io_engine);
    F(vmapple_vhost_user_blk_options, io_threads);
    F(vmapple_vhost_user_blk_options, seg_max);
    F(vmapple_vhost_user_blk_options, size_max);
    F(vmapple_vhost_user_blk_options, blk_size);
    F(vmapple_vhost_user_blk_options, serial);
    F(vmapple_vhost_user_blk_options, max_bounce_bytes);
    F(vmapple_vhost_user_blk_options, worker_poll_us);

    S(vmapple_dma_ops);
    F(vmapple_dma_ops, size);
    F(vmapple_dma_ops, map);
    F(vmapple_dma_ops, unmap);
    F(vmapple_dma_ops, close);

    S(vmapple_dma_backend_options);
    F(vmapple_dma_backend_options, size);
    F(vmapple_dma_backend_options, max_mappings);
    F(vmapple_dma_backend_options, max_bytes);

    S(vmapple_sim_dart_options);
    F(vmapple_sim_dart_options, size);
    F(vmapple_sim_dart_options, max_mappings);
    F(vmapple_sim_dart_options, max_bytes);
    F(vmapple_sim_dart_options, bus_base);

    S(vmapple_dma_occupancy);
    F(vmapple_dma_occupancy, size);
    F(vmapple_dma_occupancy, mappings);
    F(vmapple_dma_occupancy, max_mappings);
    F(vmapple_dma_occupancy, reserved);
    F(vmapple_dma_occupancy, bytes);
    F(vmapple_dma_occupancy, max_bytes);
    F(vmapple_dma_occupancy, failed_maps);

    S(vmapple_apple_dma_pci_options);
    F(vmapple_apple_dma_pci_options, size);
    F(vmapple_apple_dma_pci_options, layout);
    F(vmapple_apple_dma_pci_options, max_entries);
    F(vmapple_apple_dma_pci_options, max_mappings);
    F(vmapple_apple_dma_pci_options, managed_bdf);
    F(vmapple_apple_dma_pci_options, host_bus);
    F(vmapple_apple_dma_pci_options, host_device);
    F(vmapple_apple_dma_pci_options, host_function);
    F(vmapple_apple_dma_pci_options, reserved);
    F(vmapple_apple_dma_pci_options, dma);

    S(vmapple_apple_dma_pci_info);
    F(vmapple_apple_dma_pci_info, size);
    F(vmapple_apple_dma_pci_info, layout);
    F(vmapple_apple_dma_pci_info, max_entries);
    F(vmapple_apple_dma_pci_info, max_mappings);
    F(vmapple_apple_dma_pci_info, live_mappings);
    F(vmapple_apple_dma_pci_info, managed_bdf);
    F(vmapple_apple_dma_pci_info, host_bus);
    F(vmapple_apple_dma_pci_info, host_device);
    F(vmapple_apple_dma_pci_info, host_function);
    F(vmapple_apple_dma_pci_info, reserved);
    F(vmapple_apple_dma_pci_info, doorbells);

    S(vmapple_vfio_bar_info);
    F(vmapple_vfio_bar_info, size);
    F(vmapple_vfio_bar_info, flags);
    F(vmapple_vfio_bar_info, bar_size);
    F(vmapple_vfio_bar_info, address);

    S(vmapple_vfio_function_info);
    F(vmapple_vfio_function_info, size);
    F(vmapple_vfio_function_info, domain);
    F(vmapple_vfio_function_info, bus);
    F(vmapple_vfio_function_info, device);
    F(vmapple_vfio_function_info, function);
    F(vmapple_vfio_function_info, revision);
    F(vmapple_vfio_function_info, vendor_id);
    F(vmapple_vfio_function_info, device_id);
    F(vmapple_vfio_function_info, subsystem_vendor_id);
    F(vmapple_vfio_function_info, subsystem_id);
    F(vmapple_vfio_function_info, reserved);
    F(vmapple_vfio_function_info, class_code);

    S(vmapple_vfio_backend_ops);
    F(vmapple_vfio_backend_ops, size);
    F(vmapple_vfio_backend_ops, connect);
    F(vmapple_vfio_backend_ops, disconnect);
    F(vmapple_vfio_backend_ops, config_read);
    F(vmapple_vfio_backend_ops, config_write);
    F(vmapple_vfio_backend_ops, bar_info);
    F(vmapple_vfio_backend_ops, bar_map);
    F(vmapple_vfio_backend_ops, bar_unmap);
    F(vmapple_vfio_backend_ops, dma_map);
    F(vmapple_vfio_backend_ops, dma_unmap);
    F(vmapple_vfio_backend_ops, irq_setup);
    F(vmapple_vfio_backend_ops, irq_read_and_clear);
    F(vmapple_vfio_backend_ops, irq_set_mask);
    F(vmapple_vfio_backend_ops, irq_arm);
    F(vmapple_vfio_backend_ops, reset);
    F(vmapple_vfio_backend_ops, get_function);
    F(vmapple_vfio_backend_ops, close);

    S(vmapple_vfio_pciaccess_options);
    F(vmapple_vfio_pciaccess_options, size);
    F(vmapple_vfio_pciaccess_options, flags);
    F(vmapple_vfio_pciaccess_options, domain);

    S(vmapple_vfio_region_info);
    F(vmapple_vfio_region_info, size);
    F(vmapple_vfio_region_info, flags);
    F(vmapple_vfio_region_info, region_size);

    S(vmapple_vfio_apple_options);
    F(vmapple_vfio_apple_options, size);
    F(vmapple_vfio_apple_options, guest_bdf);
    F(vmapple_vfio_apple_options, host_bus);
    F(vmapple_vfio_apple_options, host_device);
    F(vmapple_vfio_apple_options, host_function);
    F(vmapple_vfio_apple_options, reserved);
    F(vmapple_vfio_apple_options, backend);
    F(vmapple_vfio_apple_options, companion);
    F(vmapple_vfio_apple_options, irq_deliver);

    S(vmapple_vfio_sim_options);
    F(vmapple_vfio_sim_options, size);
    F(vmapple_vfio_sim_options, reserved);
    F(vmapple_vfio_sim_options, dma);
    F(vmapple_vfio_sim_options, notify);
    F(vmapple_vfio_sim_options, notify_opaque);

    S(vmapple_vfio_sim_function);
    F(vmapple_vfio_sim_function, size);
    F(vmapple_vfio_sim_function, bus);
    F(vmapple_vfio_sim_function, device);
    F(vmapple_vfio_sim_function, function);
    F(vmapple_vfio_sim_function, reserved0);
    F(vmapple_vfio_sim_function, config_len);
    F(vmapple_vfio_sim_function, msi_vectors);
    F(vmapple_vfio_sim_function, config);
    F(vmapple_vfio_sim_function, config_bytes);
    F(vmapple_vfio_sim_function, reserved1);
    F(vmapple_vfio_sim_function, bar_size);
    F(vmapple_vfio_sim_function, bar_flags);

    S(vmapple_vfio_sim_state);
    F(vmapple_vfio_sim_state, size);
    F(vmapple_vfio_sim_state, connected);
    F(vmapple_vfio_sim_state, connects);
    F(vmapple_vfio_sim_state, resets);
    F(vmapple_vfio_sim_state, config_writes);
    F(vmapple_vfio_sim_state, irq_setups);
    F(vmapple_vfio_sim_state, arms);
    F(vmapple_vfio_sim_state, armed);
    F(vmapple_vfio_sim_state, notifies);
    F(vmapple_vfio_sim_state, bars_mapped);
    F(vmapple_vfio_sim_state, pending);
    F(vmapple_vfio_sim_state, mask);
    return 0;
}
