//! The simulated network's shape: a tree of routers with member hosts as leaves, joined by
//! pairs of directed links, and the forwarding rules over it.
//!
//! Invariant: the graph is a tree by construction (every vertex but the root router is added
//! under exactly one existing router), so multicast flooding "every link but the one it came
//! in on" reaches each host exactly once per copy, and unicast has exactly one path. Hosts are
//! leaves with a single link; their addresses come from 127.0.0.0/8 so that even a mis-wired
//! test can only ever name loopback.

use super::link::LinkModel;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// A router (index in creation order; the root router is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouterId(pub usize);

/// A member host (index in creation order). Host `i` has address [`Topology::host_addr`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostId(pub usize);

/// A directed link (index in creation order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(pub usize);

/// The two directions of one tree edge: `to_child` carries datagrams away from the root
/// router, `to_parent` towards it.
#[derive(Clone, Debug, Default)]
pub struct Duplex {
    /// Model of the direction away from the root router.
    pub to_child: LinkModel,
    /// Model of the direction towards the root router.
    pub to_parent: LinkModel,
}

impl Duplex {
    /// The same model both ways.
    #[must_use]
    pub fn symmetric(model: LinkModel) -> Duplex {
        Duplex {
            to_child: model.clone(),
            to_parent: model,
        }
    }
}

impl From<LinkModel> for Duplex {
    fn from(model: LinkModel) -> Duplex {
        Duplex::symmetric(model)
    }
}

/// A vertex: a router or a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vertex {
    Router(usize),
    Host(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct LinkSpec {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) model: LinkModel,
}

/// A tree of routers and hosts with a [`LinkModel`] on every directed link.
#[derive(Clone, Debug)]
pub struct Topology {
    vertices: Vec<Vertex>,
    /// Outgoing links of each vertex.
    out_links: Vec<Vec<usize>>,
    /// The link from each vertex to its parent (none for the root).
    up_link: Vec<Option<usize>>,
    links: Vec<LinkSpec>,
    routers: Vec<usize>,
    hosts: Vec<usize>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new()
    }
}

impl Topology {
    /// A network with only the root router ([`RouterId`] 0). Add routers and hosts under it.
    #[must_use]
    pub fn new() -> Topology {
        Topology {
            vertices: vec![Vertex::Router(0)],
            out_links: vec![Vec::new()],
            up_link: vec![None],
            links: Vec::new(),
            routers: vec![0],
            hosts: Vec::new(),
        }
    }

    /// One source behind a shared link to a hub router that has `receivers` leaf hosts.
    /// Host 0 is the source (its link is `source_link`), hosts `1..=receivers` the leaves.
    /// Loss on the source link's `to_parent` direction hits every receiver at once.
    #[must_use]
    pub fn star(
        receivers: usize,
        source_link: impl Into<Duplex>,
        leaf_link: impl Into<Duplex>,
    ) -> Topology {
        Topology::tree(&[receivers], source_link, LinkModel::default(), leaf_link)
    }

    /// A multi-level tree: the source (host 0) hangs off the root router by `source_link`; the
    /// root has `fanouts[0]` children, each of those `fanouts[1]`, and so on; the last level are
    /// receiver hosts (joined by `leaf_link`), inner levels routers (joined by `inner_link`).
    /// Receivers are numbered 1.. in depth-first order, so hosts under one router are adjacent.
    #[must_use]
    pub fn tree(
        fanouts: &[usize],
        source_link: impl Into<Duplex>,
        inner_link: impl Into<Duplex>,
        leaf_link: impl Into<Duplex>,
    ) -> Topology {
        let mut topology = Topology::new();
        topology.add_host(RouterId(0), source_link);
        let inner = inner_link.into();
        let leaf = leaf_link.into();
        topology.grow(RouterId(0), fanouts, &inner, &leaf);
        topology
    }

    fn grow(&mut self, router: RouterId, fanouts: &[usize], inner: &Duplex, leaf: &Duplex) {
        match fanouts {
            [] => {}
            [hosts] => {
                for _ in 0..*hosts {
                    self.add_host(router, leaf.clone());
                }
            }
            [routers, rest @ ..] => {
                for _ in 0..*routers {
                    let child = self.add_router(router, inner.clone());
                    self.grow(child, rest, inner, leaf);
                }
            }
        }
    }

    /// Adds a router under `parent`.
    pub fn add_router(&mut self, parent: RouterId, link: impl Into<Duplex>) -> RouterId {
        let id = RouterId(self.routers.len());
        let vertex = self.attach(self.routers[parent.0], Vertex::Router(id.0), link.into());
        self.routers.push(vertex);
        id
    }

    /// Adds a member host under `router`.
    pub fn add_host(&mut self, router: RouterId, link: impl Into<Duplex>) -> HostId {
        let id = HostId(self.hosts.len());
        let vertex = self.attach(self.routers[router.0], Vertex::Host(id.0), link.into());
        self.hosts.push(vertex);
        id
    }

    fn attach(&mut self, parent: usize, kind: Vertex, link: Duplex) -> usize {
        let child = self.vertices.len();
        self.vertices.push(kind);
        self.out_links.push(Vec::new());
        let down = self.links.len();
        self.links.push(LinkSpec {
            from: parent,
            to: child,
            model: link.to_child,
        });
        self.links.push(LinkSpec {
            from: child,
            to: parent,
            model: link.to_parent,
        });
        self.out_links[parent].push(down);
        self.out_links[child].push(down + 1);
        self.up_link.push(Some(down + 1));
        child
    }

    /// Number of member hosts.
    #[must_use]
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Number of routers, the root included.
    #[must_use]
    pub fn routers(&self) -> usize {
        self.routers.len()
    }

    /// The address of host `host`: 127.1.x.y:7400, never 127.0.0.1.
    #[must_use]
    pub fn host_addr(&self, host: HostId) -> SocketAddr {
        host_addr(host.0)
    }

    /// The link from `host` to its router.
    #[must_use]
    pub fn host_uplink(&self, host: HostId) -> LinkId {
        LinkId(self.out_links[self.hosts[host.0]][0])
    }

    /// The link from `host`'s router to `host`.
    #[must_use]
    pub fn host_downlink(&self, host: HostId) -> LinkId {
        LinkId(self.host_uplink(host).0 - 1)
    }

    /// The link from `router` to its parent, none for the root.
    #[must_use]
    pub fn router_uplink(&self, router: RouterId) -> Option<LinkId> {
        self.up_link[self.routers[router.0]].map(LinkId)
    }

    /// The link from `router`'s parent to `router`, none for the root.
    #[must_use]
    pub fn router_downlink(&self, router: RouterId) -> Option<LinkId> {
        self.router_uplink(router).map(|up| LinkId(up.0 - 1))
    }

    /// Replaces the model of one directed link.
    pub fn set_link(&mut self, link: LinkId, model: LinkModel) {
        self.links[link.0].model = model;
    }

    /// The model of one directed link.
    pub fn link(&self, link: LinkId) -> &LinkModel {
        &self.links[link.0].model
    }

    /// A short name for a link, e.g. `r0->h3`, for traces and reports.
    #[must_use]
    pub fn link_name(&self, link: LinkId) -> String {
        let spec = &self.links[link.0];
        format!(
            "{}->{}",
            self.vertex_name(spec.from),
            self.vertex_name(spec.to)
        )
    }

    fn vertex_name(&self, vertex: usize) -> String {
        match self.vertices[vertex] {
            Vertex::Router(r) => format!("r{r}"),
            Vertex::Host(h) => format!("h{h}"),
        }
    }

    pub(crate) fn link_specs(&self) -> &[LinkSpec] {
        &self.links
    }

    pub(crate) fn host_vertex(&self, host: usize) -> usize {
        self.hosts[host]
    }

    pub(crate) fn vertex(&self, vertex: usize) -> Vertex {
        self.vertices[vertex]
    }

    pub(crate) fn out_links(&self, vertex: usize) -> &[usize] {
        &self.out_links[vertex]
    }

    /// Computes unicast routes; call after the last vertex is added.
    pub(crate) fn routes(&self) -> Routes {
        Routes::new(self)
    }
}

/// The address of host index `host`.
pub(crate) fn host_addr(host: usize) -> SocketAddr {
    // 127.1.0.1 upwards: inside 127.0.0.0/8 and clear of 127.0.0.1.
    let n = host + 1;
    let ip = Ipv4Addr::new(127, 1, (n >> 8) as u8, (n & 0xff) as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, 7400))
}

/// Unicast next hops over the tree, from an Euler tour: `dest` is below `vertex` exactly when
/// its entry time falls inside `vertex`'s interval, and the child to take is found by binary
/// search over the children's entry times.
pub(crate) struct Routes {
    enter: Vec<u32>,
    exit: Vec<u32>,
    /// Per vertex: (entry time of child, link to that child), sorted by entry time.
    children: Vec<Vec<(u32, usize)>>,
    up_link: Vec<Option<usize>>,
}

impl Routes {
    fn new(topology: &Topology) -> Routes {
        let n = topology.vertices.len();
        let mut enter = vec![0; n];
        let mut exit = vec![0; n];
        let mut children = vec![Vec::new(); n];
        let mut clock = 0u32;
        // Iterative DFS from the root (vertex 0): (vertex, next out-link index).
        let mut stack = vec![(0usize, 0usize)];
        enter[0] = clock;
        while let Some(&(vertex, next)) = stack.last() {
            let links = &topology.out_links[vertex];
            let Some(&link) = links.get(next) else {
                exit[vertex] = clock;
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            if topology.up_link[vertex] == Some(link) {
                continue;
            }
            let child = topology.links[link].to;
            clock += 1;
            enter[child] = clock;
            children[vertex].push((clock, link));
            stack.push((child, 0));
        }
        Routes {
            enter,
            exit,
            children,
            up_link: topology.up_link.clone(),
        }
    }

    /// The link to take from `vertex` towards `dest`, none if `vertex` is `dest`.
    pub(crate) fn next_link(&self, vertex: usize, dest: usize) -> Option<usize> {
        if vertex == dest {
            return None;
        }
        let t = self.enter[dest];
        if self.enter[vertex] < t && t <= self.exit[vertex] {
            let children = &self.children[vertex];
            // The child whose subtree holds `dest` is the last one entered at or before it.
            let index = children.partition_point(|(entered, _)| *entered <= t) - 1;
            Some(children[index].1)
        } else {
            self.up_link[vertex]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows routes from host `a` to host `b`, returning the vertices visited.
    fn path(topology: &Topology, a: usize, b: usize) -> Vec<Vertex> {
        let routes = topology.routes();
        let dest = topology.host_vertex(b);
        let mut at = topology.host_vertex(a);
        let mut seen = vec![topology.vertex(at)];
        while let Some(link) = routes.next_link(at, dest) {
            at = topology.link_specs()[link].to;
            seen.push(topology.vertex(at));
            assert!(seen.len() < 100, "routing loop");
        }
        seen
    }

    #[test]
    fn tree_shape_and_counts() {
        let topology = Topology::tree(
            &[3, 4],
            LinkModel::default(),
            LinkModel::default(),
            LinkModel::default(),
        );
        assert_eq!(topology.hosts(), 13);
        assert_eq!(topology.routers(), 4);
        assert_eq!(topology.link_specs().len(), 2 * (13 + 3));
    }

    #[test]
    fn unicast_follows_the_tree() {
        let topology = Topology::tree(
            &[3, 4],
            LinkModel::default(),
            LinkModel::default(),
            LinkModel::default(),
        );
        use Vertex::{Host, Router};
        // Receivers 1..=4 under r1, 5..=8 under r2.
        assert_eq!(path(&topology, 1, 2), [Host(1), Router(1), Host(2)]);
        assert_eq!(
            path(&topology, 1, 6),
            [Host(1), Router(1), Router(0), Router(2), Host(6)]
        );
        assert_eq!(
            path(&topology, 12, 0),
            [Host(12), Router(3), Router(0), Host(0)]
        );
        assert_eq!(
            path(&topology, 0, 9),
            [Host(0), Router(0), Router(3), Host(9)]
        );
        for a in 0..topology.hosts() {
            for b in 0..topology.hosts() {
                assert_eq!(path(&topology, a, b).last(), Some(&Host(b)));
            }
        }
    }

    #[test]
    fn link_accessors_name_the_right_edges() {
        let topology = Topology::star(3, LinkModel::default(), LinkModel::default());
        assert_eq!(
            topology.link_name(topology.host_uplink(HostId(0))),
            "h0->r0"
        );
        assert_eq!(
            topology.link_name(topology.host_downlink(HostId(2))),
            "r0->h2"
        );
        let mut tree = Topology::tree(
            &[2, 2],
            LinkModel::default(),
            LinkModel::default(),
            LinkModel::default(),
        );
        let r2 = RouterId(2);
        assert_eq!(tree.link_name(tree.router_uplink(r2).unwrap()), "r2->r0");
        assert_eq!(tree.link_name(tree.router_downlink(r2).unwrap()), "r0->r2");
        assert!(tree.router_uplink(RouterId(0)).is_none());
        tree.set_link(
            tree.host_downlink(HostId(1)),
            LinkModel::default().bernoulli(0.5),
        );
        assert!(matches!(
            tree.link(tree.host_downlink(HostId(1))).loss,
            super::super::link::LossModel::Bernoulli(_)
        ));
    }

    #[test]
    fn host_addresses_are_loopback_and_distinct() {
        let addrs: std::collections::HashSet<SocketAddr> = (0..1000).map(host_addr).collect();
        assert_eq!(addrs.len(), 1000);
        assert!(
            addrs
                .iter()
                .all(|a| a.ip().is_loopback() && a.ip() != Ipv4Addr::LOCALHOST)
        );
    }
}
