// The pure parts of containment: reading cgroup mounts and membership, deciding where
// each controller is used and what is written there, and the bwrap command line.
#include <catch2/catch.hpp>

#include <algorithm>

#include "worker/process/cgroups.h"
#include "worker/process/containment.h"

namespace rc::worker {
namespace {

// A hybrid host (cgroup v1 controllers plus an empty unified hierarchy), as on Debian
// 10 era machines and many CI VMs.
constexpr char kHybridMountInfo[] =
    "24 1 0:22 / /sys rw,nosuid - sysfs sysfs rw\n"
    "30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
    "32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    "33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    "35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
constexpr char kHybridProcCgroup[] =
    "9:name=systemd:/user.slice\n"
    "8:pids:/\n"
    "4:memory:/jobs/a1\n"
    "1:cpu,cpuacct:/\n"
    "0::/user.slice\n";

// A pure v2 host where the worker runs in a systemd service with Delegate=yes.
constexpr char kV2MountInfo[] = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
constexpr char kV2ProcCgroup[] = "0::/system.slice/rc-worker.service\n";

bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("cgroup mounts: v1 controllers (co-mounted ones too), named hierarchies skipped, v2 found") {
  CgroupMounts m = ParseMountInfo(kHybridMountInfo);
  REQUIRE(m.v2.has_value());
  CHECK(m.v2->mount_point == "/sys/fs/cgroup/unified");
  CHECK(m.v1.size() == 4);
  CHECK(m.v1.at("cpu").mount_point == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(m.v1.at("cpuacct").mount_point == "/sys/fs/cgroup/cpu,cpuacct");
  CHECK(m.v1.at("pids").mount_point == "/sys/fs/cgroup/pids");
  CHECK(m.v1.count("name=systemd") == 0);
  CHECK(m.v1.count("systemd") == 0);

  CgroupMounts v2 = ParseMountInfo(kV2MountInfo);
  CHECK(v2.v1.empty());
  REQUIRE(v2.v2.has_value());
  CHECK(v2.v2->mount_point == "/sys/fs/cgroup");
  CHECK(ParseMountInfo("garbage\n\n1 2 3\n").v1.empty());
}

TEST_CASE("/proc/self/cgroup: the v2 path under \"\", v1 paths per controller") {
  auto own = ParseProcCgroup(kHybridProcCgroup);
  CHECK(own.at("") == "/user.slice");
  CHECK(own.at("memory") == "/jobs/a1");
  CHECK(own.at("cpu") == "/");
  CHECK(own.at("cpuacct") == "/");
  CHECK(own.count("name=systemd") == 0);
  CHECK(ParseProcCgroup("0::/a:b\n").at("") == "/a:b");  // a ':' inside the path survives
}

TEST_CASE("plan: v1 hierarchies win, the worker's own cgroup is the parent, missing ones say why") {
  CgroupPlan plan = PlanCgroups({"memory", "pids", "cpu"}, ParseMountInfo(kHybridMountInfo),
                                ParseProcCgroup(kHybridProcCgroup), "");
  REQUIRE(plan.sites.size() == 3);
  CHECK(plan.missing.empty());
  CHECK(plan.sites[0].controller == "memory");
  CHECK(plan.sites[0].version == 1);
  CHECK(plan.sites[0].dir == "/sys/fs/cgroup/memory/jobs/a1");
  CHECK(plan.sites[1].dir == "/sys/fs/cgroup/pids");
  CHECK(plan.sites[2].dir == "/sys/fs/cgroup/cpu,cpuacct");

  // No v1 pids, and the unified hierarchy has nothing delegated.
  CgroupMounts no_pids = ParseMountInfo(kHybridMountInfo);
  no_pids.v1.erase("pids");
  plan = PlanCgroups({"pids"}, no_pids, ParseProcCgroup(kHybridProcCgroup), "\n");
  CHECK(plan.sites.empty());
  REQUIRE(plan.missing.size() == 1);
  CHECK(plan.missing[0].first == "pids");
  CHECK_THAT(plan.missing[0].second, Catch::Contains("not delegated to cgroup v2 group /sys/fs/cgroup/unified/user.slice"));
}

TEST_CASE("plan: v2 uses the controllers delegated to the worker's cgroup") {
  CgroupPlan plan = PlanCgroups({"memory", "pids", "cpu"}, ParseMountInfo(kV2MountInfo), ParseProcCgroup(kV2ProcCgroup),
                                "cpuset cpu io memory pids\n");
  REQUIRE(plan.sites.size() == 3);
  for (const CgroupSite& s : plan.sites) {
    CHECK(s.version == 2);
    CHECK(s.dir == "/sys/fs/cgroup/system.slice/rc-worker.service");
  }
  plan = PlanCgroups({"memory", "pids"}, ParseMountInfo(kV2MountInfo), ParseProcCgroup(kV2ProcCgroup), "memory");
  REQUIRE(plan.sites.size() == 1);
  REQUIRE(plan.missing.size() == 1);
  CHECK(plan.missing[0].first == "pids");
  CHECK_THAT(plan.missing[0].second, Catch::Contains("cgroup.controllers: 'memory'"));

  plan = PlanCgroups({"pids"}, CgroupMounts{}, {}, "");
  REQUIRE(plan.missing.size() == 1);
  CHECK_THAT(plan.missing[0].second, Catch::Contains("no cgroup hierarchy"));
}

TEST_CASE("plan: a container's subtree mount maps the worker's cgroup below its root") {
  CgroupMounts m;
  m.v1["pids"] = {"/docker/abc", "/sys/fs/cgroup/pids"};
  CgroupPlan plan = PlanCgroups({"pids"}, m, {{"pids", "/docker/abc/worker"}}, "");
  REQUIRE(plan.sites.size() == 1);
  CHECK(plan.sites[0].dir == "/sys/fs/cgroup/pids/worker");
  plan = PlanCgroups({"pids"}, m, {{"pids", "/elsewhere"}}, "");
  REQUIRE(plan.missing.size() == 1);
  CHECK_THAT(plan.missing[0].second, Catch::Contains("does not contain this process's cgroup"));
}

TEST_CASE("limit files: names and values per controller and cgroup version, nothing for no limit") {
  CgroupLimits l;
  l.memory_bytes = 256 << 20;
  l.pids_max = 64;
  l.cpu_percent = 50;
  using Files = std::vector<std::pair<std::string, std::string>>;
  CHECK(LimitFiles("memory", 2, l) == Files{{"memory.max", "268435456"}});
  CHECK(LimitFiles("memory", 1, l) == Files{{"memory.limit_in_bytes", "268435456"}});
  CHECK(LimitFiles("pids", 1, l) == Files{{"pids.max", "64"}});
  CHECK(LimitFiles("pids", 2, l) == Files{{"pids.max", "64"}});
  CHECK(LimitFiles("cpu", 2, l) == Files{{"cpu.max", "50000 100000"}});
  CHECK(LimitFiles("cpu", 1, l) == Files{{"cpu.cfs_period_us", "100000"}, {"cpu.cfs_quota_us", "50000"}});
  CHECK(LimitFiles("memory", 2, CgroupLimits{}).empty());
  CHECK(NoSwapFiles("memory", 2, l) == Files{{"memory.swap.max", "0"}});
  CHECK(NoSwapFiles("memory", 1, l) == Files{{"memory.memsw.limit_in_bytes", "268435456"}});
  CHECK(NoSwapFiles("pids", 1, l).empty());
  CHECK(WantedControllers(l) == std::vector<std::string>{"memory", "pids", "cpu"});
  CHECK(WantedControllers(CgroupLimits{}).empty());
}

TEST_CASE("bwrap argv: read-only root, private /tmp, secrets hidden before the task dir is opened") {
  BwrapPlan plan;
  plan.bwrap = "/usr/bin/bwrap";
  plan.hidden_dirs = {"/var/lib/rc"};
  plan.hidden_files = {"/etc/rc/token"};
  plan.paths = {"/var/lib/rc/tasks/t1", {"/var/lib/rc/venvs/v1"}};
  plan.cwd = "/var/lib/rc/tasks/t1/sub";
  std::vector<std::string> a = BwrapArgv(plan, {"/bin/sh", "-c", "echo hi"});
  auto at = [&](const std::vector<std::string>& seq) {
    auto it = std::search(a.begin(), a.end(), seq.begin(), seq.end());
    return it == a.end() ? -1 : static_cast<int>(it - a.begin());
  };
  CHECK(a[0] == "/usr/bin/bwrap");
  for (const char* flag : {"--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                           "--unshare-net"}) {
    INFO(flag);
    CHECK(Has(a, flag));
  }
  CHECK(!Has(a, "--new-session"));  // the runner's process group must reach the sandbox
  CHECK(at({"--ro-bind", "/", "/"}) > 0);
  CHECK(at({"--tmpfs", "/tmp"}) > at({"--ro-bind", "/", "/"}));
  const int hide = at({"--tmpfs", "/var/lib/rc"});
  CHECK(hide > at({"--tmpfs", "/tmp"}));
  CHECK(at({"--ro-bind", "/dev/null", "/etc/rc/token"}) > hide);
  CHECK(at({"--ro-bind", "/var/lib/rc/venvs/v1", "/var/lib/rc/venvs/v1"}) > hide);
  CHECK(at({"--bind", "/var/lib/rc/tasks/t1", "/var/lib/rc/tasks/t1"}) > hide);
  CHECK(at({"--chdir", "/var/lib/rc/tasks/t1/sub", "--", "/bin/sh", "-c", "echo hi"}) ==
        static_cast<int>(a.size()) - 6);

  plan.network = true;
  CHECK(!Has(BwrapArgv(plan, {"/bin/true"}), "--unshare-net"));
}

}  // namespace rc::worker
