import Config

extension VmConfig {
    /// Every device and option of CH's VmConfig set (most away from their defaults), as the CLI builds them:
    /// for tests that must see every field written, such as JSON round trips and the OpenAPI document's.
    public static func everything() throws -> VmConfig {
        var config = VmConfig(
            cpus: try CpusConfig.parse("boot=2,max=4,topology=1:2:1:2,affinity=[0@[0],1@[1]],features=[amx],kvm_hyperv=on"),
            memory: try MemoryConfig.parse("size=1G,shared=on,hotplug_method=virtio-mem,hotplug_size=1G,hugepage_size=2M"),
            payload: PayloadConfig(kernel: "/boot/vmlinux", cmdline: "console=ttyS0", initramfs: "/boot/initrd"),
            serial: try ConsoleConfig.parse("file=/tmp/serial.log", flag: "--serial"),
            console: try ConsoleConfig.parse("socket=/tmp/console.sock,id=console0,iommu=on", flag: "--console"),
            rng: try RngConfig.parse("src=/dev/random,id=rng0"))
        config.memory.zones = [try MemoryZoneConfig.parse("id=mem0,size=256M,file=/dev/shm/mem0,host_numa_node=0,hotplug_size=128M")]
        config.rate_limit_groups = [try RateLimiterGroupConfig.parse("id=group0,bw_size=1000,bw_one_time_burst=10,bw_refill_time=100")]
        config.disks = [
            try DiskConfig.parse("path=/img/root.raw,readonly=on,id=disk0,serial=ROOT,image_type=raw,pci_device_id=5,"
                + "bw_size=1000,bw_refill_time=100,ops_size=10,ops_refill_time=100,queue_affinity=[0@[0,1]]"),
            try DiskConfig.parse("vhost_user=on,socket=/tmp/vub.sock,rate_limit_group=group0,_disable_io_uring=on"),
        ]
        config.net = [try NetConfig.parse("tap=tap0,ip=192.168.249.1,mask=255.255.255.0,mac=12:34:56:78:9a:bc,"
            + "host_mac=12:34:56:78:9a:bd,mtu=1500,id=net0,offload_tso=off,bw_size=100,bw_refill_time=10")]
        config.balloon = try BalloonConfig.parse("size=64M,deflate_on_oom=on,free_page_reporting=on")
        config.generic_vhost_user = [try GenericVhostUserConfig.parse("socket=/tmp/gvu.sock,device_type=fs,queue_sizes=[1024,1024]")]
        config.fs = [try FsConfig.parse("tag=share,socket=/tmp/fs.sock")]
        config.pmem = [try PmemConfig.parse("file=/img/pmem")]
        config.debug_console = try DebugConsoleConfig.parse("file=/tmp/debug.log,iobase=0x402")
        config.devices = [try DeviceConfig.parse("path=/sys/bus/pci/devices/0000:01:00.0,x_nv_gpudirect_clique=1")]
        config.user_devices = [try UserDeviceConfig.parse("socket=/tmp/user.sock")]
        config.vdpa = [try VdpaConfig.parse("path=/dev/vhost-vdpa-0")]
        config.vsock = try VsockConfig.parse("cid=3,socket=/tmp/vsock.sock,id=vsock0")
        config.pvpanic = true
        config.iommu = true
        config.numa = [try NumaConfig.parse("guest_numa_id=0,cpus=[0-1],distances=[1@20],memory_zones=[mem0],pci_segments=[0]")]
        config.watchdog = true
        config.rtc = try RtcConfig.parse("id=rtc0")
        config.pci_segments = [try PciSegmentConfig.parse("pci_segment=1,mmio32_aperture_weight=2")]
        config.platform = try PlatformConfig.parse("num_pci_segments=2,iommu_segments=[1],oem_strings=[a,b],"
            + "system_manufacturer=ACME,system_uuid=1e4c7a20-0000-4000-8000-000000000001,iommufd=on")
        config.tpm = try TpmConfig.parse("socket=/tmp/swtpm.sock")
        config.landlock_enable = true
        config.landlock_rules = [try LandlockConfig.parse("path=/img,access=rw")]
        return config
    }
}
