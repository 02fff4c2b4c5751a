#!/usr/bin/env bash
# `make demo` (after `make lab`): the whole story on the lab fleet, from a by-hand install
# (captured on purpose, then intercepted without anyone thinking of it) to a staged rollout. Every step is an ordinary mo.fleet playbook; rerunning is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/demo
mkdir -p "$OUT"
CATALOG=(-e @demo/catalog.yml)
DAYS=(2026-12-04 2026-12-07 2026-12-08 2026-12-09 2026-12-10)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
play() { ansible-playbook "$@"; }

step "0. The fleet"
play playbooks/demo.yml

step "1. By hand on web1: GNU hello from its Debian source, ./configure && make"
play demo/prepare-source.yml

step "2. Capture 'make install' on web1 and bring the bundle home"
play playbooks/capture.yml --limit web1 -e capture_name=hello -e "capture_cmd='make install'" \
  -e capture_chdir=/usr/local/src/hello-2.10 -e capture_creates=/usr/local/bin/hello \
  -e capture_dest="$OUT/captures"
play playbooks/template_info.yml -e bundle="$OUT/captures/web1/hello"

step "3. Turn the bundle into a standalone role and apply it to ssh1 (over SSH)"
play playbooks/template_to_role.yml -e template="$OUT/captures/web1/hello" \
  -e role_dir="$OUT/roles/hello" -e role_name=hello
play demo/apply-role.yml -e demo_role_dir="$PWD/$OUT/roles/hello"
ansible ssh1 -m ansible.builtin.command -a /usr/local/bin/hello
play playbooks/verify.yml -e bundle="$OUT/captures/web1/hello" --limit ssh1

step "3b. By hand again, nobody thinking of mo.fleet: root types apt-get install in a login shell on web1"
# what an admin does: ssh in as the login user, become root in an interactive login shell, type
# the install; the target role's wrapper (/etc/profile.d/mo-fleet-capture.sh) captures it
ansible web1 -b -m ansible.builtin.apt -a "name=figlet state=absent purge=true" >/dev/null  # a fresh start on reruns
read -ra SSH_WEB1 <<<"$(ansible-inventory --host web1 | python3 -c '
import json, shlex, sys
v = json.load(sys.stdin)
print(" ".join(["ssh", "-tt", "-i", v["ansible_ssh_private_key_file"]] + shlex.split(v["ansible_ssh_common_args"])
               + ["%s@%s" % (v["ansible_user"], v["ansible_host"])]))')"
"${SSH_WEB1[@]}" "sudo bash -l -i -c 'type apt-get; apt-get install -y -q --no-install-recommends figlet'" 2>/dev/null
ansible web1 -b -m ansible.builtin.command -a "mo-capture list-templates"

step "3c. Harvest brings it home; the intercepted template becomes a role, applied to web2"
play playbooks/harvest.yml --limit web1 -e harvest_dest="$OUT/harvested"
typed=$(find "$OUT/harvested/web1" -maxdepth 1 -name 'apt-get-install-figlet-*' | sort | tail -n 1)
echo "The intercepted install: $typed"
play playbooks/template_info.yml -e bundle="$typed"
play playbooks/template_to_role.yml -e template="$typed" -e role_dir="$OUT/roles/figlet" -e role_name=figlet
play demo/apply-role.yml -e demo_role_dir="$PWD/$OUT/roles/figlet" -e demo_role_hosts=web2
ansible web2 -m ansible.builtin.command -a "figlet -f small rolled out"

step "4. Package the capture as a .deb"
play playbooks/template_to_deb.yml -e template="$OUT/captures/web1/hello" -e deb_dir="$OUT/debs" \
  -e deb_name=mo-hello -e deb_version=2.10-1 -e deb_strip=true

step "5. Stand up the repository server on repo1, upload the .deb, publish the deployment"
# the natural order: the server comes up with the real catalog before the .deb is uploaded
# (the 'hello' deployment is reported pending, naming the missing .deb); the publish after
# the upload completes it
play playbooks/repo_server.yml "${CATALOG[@]}"
play playbooks/upload.yml "${CATALOG[@]}" -e upload_src="$OUT/debs/mo-hello_2.10-1_amd64.deb" -e upload_store=main
play playbooks/publish.yml "${CATALOG[@]}"

step "6. The plan: who gets 'hello' on which day"
play playbooks/plan.yml "${CATALOG[@]}" -e plan_start="${DAYS[0]}" -e plan_end="${DAYS[-1]}" \
  -e plan_html="$OUT/plan.html"

step "7. Roll out day by day (simulated dates)"
for day in "${DAYS[@]}"; do
  step "   rollout on $day"
  play playbooks/rollout.yml "${CATALOG[@]}" -e mo_fleet_today="$day"
  play demo/who-has.yml
done

step "8. The status site, served by repo1 at /status/"
play playbooks/report.yml "${CATALOG[@]}" -e mo_fleet_today="${DAYS[-1]}"
url="http://$(podman inspect -f '{{(index .NetworkSettings.Networks "mo-fleet-lab").IPAddress}}' repo1)/status/"
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --user-data-dir="$(mktemp -d)" --window-size=1280,1600 \
  --screenshot="$PWD/$OUT/status.png" "$url" >/dev/null 2>&1 || true
echo "Status page: $url"
[ -s "$OUT/status.png" ] && echo "Screenshot:  $OUT/status.png"
echo "Plan chart:  $OUT/plan.html"

step "9. Pull mode: web2 converges itself with ansible-pull from repo1 and uploads its record"
# repo1 serves a signed pull repository for the day; web2 gets ansible-core from repo1's wheels
# and mo-fleet-pull.timer; one pull cycle is started now instead of waiting for the timer
play playbooks/repo_server.yml "${CATALOG[@]}" -e '{"repo_server_pull_hosts": ["web2"]}' \
  -e mo_fleet_today="${DAYS[-1]}"
play playbooks/pull.yml "${CATALOG[@]}" -e pull_pattern=web2
ansible web2 -b -m ansible.builtin.systemd_service -a "name=mo-fleet-pull.service state=started"
ansible web2 -b -m ansible.builtin.command -a "journalctl -u mo-fleet-pull.service -n 5 --no-pager"
for _ in 1 2 3 4 5 6 7 8 9 10; do  # the server ingests the record a moment later
  ansible repo1 -b -m ansible.builtin.command \
    -a "cat /var/lib/mo-fleet/pull/state/reports/sync/web2.json" && break
  sleep 3
done
